-- Argo CD health check for AnalyticsTenant (analytics.millimetric.ai/v1alpha1).
--
-- Argo CD sets `obj` to the tenant and takes the table returned: hs.status is
-- Healthy, Progressing or Degraded, hs.message says why. It runs as a
-- resource customization (argocd-cm key
-- resource.customizations.health.analytics.millimetric.ai_AnalyticsTenant),
-- where only Lua's base, table and package libraries are open: no string or
-- math functions are used. Tested by internal/health.
--
-- Progressing: being deleted; the operator has not yet observed the latest
-- generation; no Ready condition yet; Ready True but still Reconciling; or
-- Ready not True for a reason that resolves on its own while the operator
-- keeps reconciling (pods starting, a rollout, a rollout waiting its turn
-- after an operator upgrade, a lock in the database).
-- Degraded: Stalled True (kstatus Failed), whatever Ready's reason; or
-- Ready not True for any other reason (region unavailable, storage,
-- credentials, retention failing or overdue, an object refused): a person
-- has to act. Unknown reasons count as failures, so a reason added later is
-- never hidden as Progressing.
-- Healthy: Ready True. A suspended tenant (spec.suspend) is Ready by design
-- and is reported Healthy, not Suspended: suspension is a customer's
-- standing state, not a rollout paused for a human to resume, and its
-- retention keeps running; Argo CD's Suspended would hold `argocd app wait
-- --health` and make the whole Application Suspended for as long as one
-- customer is.

local transient = {
  Progressing = true,
  DeploymentUnavailable = true,
  StorageBusy = true,
  RolloutQueued = true,
}

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

local function describe(c)
  local text = "Ready is " .. tostring(c.status)
  if c.reason ~= nil and c.reason ~= "" then
    text = text .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    text = text .. ": " .. c.message
  end
  return text
end

local hs = {}
local status = obj.status
local generation = obj.metadata.generation
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator purges the tenant's data (or holds it, with deletionPolicy Retain) before the tenant goes"
  return hs
end

if status == nil or status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to apply generation " .. tostring(generation)
  if ready ~= nil then
    hs.message = hs.message .. "; " .. describe(ready)
  end
  return hs
end

-- Stalled: no retry resolves it (an image that does not pull, no node for
-- the pods, a rollout past its deadline, a spec or a conflict the operator
-- refuses); kstatus calls it Failed.
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = "Stalled (" .. tostring(stalled.reason) .. "): " .. tostring(stalled.message)
  return hs
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first Ready condition"
  return hs
end

if ready.status == "True" then
  if reconciling ~= nil and reconciling.status == "True" then
    hs.status = "Progressing"
    hs.message = "Ready, and still reconciling: " .. tostring(reconciling.message)
    return hs
  end
  hs.status = "Healthy"
  hs.message = tostring(ready.message)
  if obj.spec ~= nil and obj.spec.suspend == true then
    hs.message = "Suspended (spec.suspend): ingest is scaled to zero; data is kept and retention keeps running"
  end
  return hs
end

-- Ready is False or Unknown. The operator keeps Reconciling True while it
-- is; should it ever say Reconciling False, it has stopped trying, and even
-- a transient reason needs a person.
if transient[ready.reason] and not (reconciling ~= nil and reconciling.status == "False") then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = describe(ready)
return hs
