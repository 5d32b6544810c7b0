-- Argo CD health check for StorageRegion (analytics.millimetric.ai/v1alpha1).
--
-- Argo CD sets `obj` to the region and takes the table returned: hs.status is
-- Healthy, Progressing or Degraded, hs.message says why. It runs as a
-- resource customization (argocd-cm key
-- resource.customizations.health.analytics.millimetric.ai_StorageRegion),
-- where only Lua's base, table and package libraries are open: no string or
-- math functions are used. Tested by internal/health.
--
-- Progressing: the operator has not yet checked the latest generation (no
-- Ready condition, or an older observedGeneration), or Ready is Unknown.
-- Healthy: Ready True, the admin connection works.
-- Degraded: Ready False (connection, credentials, TLS, a duplicate region,
-- a refused Secret or sslMode): no tenant of the region can be provisioned
-- until a person acts.

local function condition(status, conditionType)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local hs = {}
local status = obj.status
local generation = obj.metadata.generation
local ready = condition(status, "Ready")

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first check of the region's database"
  return hs
end

if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check generation " .. tostring(generation)
  return hs
end

local text = "Ready is " .. tostring(ready.status)
if ready.reason ~= nil and ready.reason ~= "" then
  text = text .. " (" .. ready.reason .. ")"
end
if ready.message ~= nil and ready.message ~= "" then
  text = text .. ": " .. ready.message
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = tostring(ready.message)
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = text
else
  hs.status = "Progressing"
  hs.message = text
end
return hs
