/*
Copyright 2026 Millimetric, Inc.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package health_test

import (
	"context"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// argoHealth is what a health script returned: hs.status and hs.message.
type argoHealth struct {
	status  string
	message string
}

// runHealthScript runs a health check the way Argo CD runs a resource
// customization's (util/lua in Argo CD): a Lua state with only the package,
// base and table libraries open (no string, math or io; Argo CD adds a
// restricted os, which these scripts do not use), a one-second deadline,
// the live object as the global obj, and the table the script returns.
func runHealthScript(t *testing.T, script string, obj *unstructured.Unstructured) argoHealth {
	t.Helper()
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatalf("opening Lua library %q: %v", lib.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", luaValue(l, obj.Object))
	if err := l.DoString(script); err != nil {
		t.Fatalf("health script on %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
	hs, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health script on %s %s returned a %s, not a table", obj.GetKind(), obj.GetName(), l.Get(-1).Type())
	}
	st, ok := hs.RawGetString("status").(lua.LString)
	if !ok {
		t.Fatalf("health script on %s %s: hs.status is a %s, not a string", obj.GetKind(), obj.GetName(), hs.RawGetString("status").Type())
	}
	msg, ok := hs.RawGetString("message").(lua.LString)
	if !ok {
		t.Fatalf("health script on %s %s: hs.message is a %s, not a string", obj.GetKind(), obj.GetName(), hs.RawGetString("message").Type())
	}
	switch st {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		// Argo CD shows an invalid status as Unknown.
		t.Fatalf("health script on %s %s: %q is not an Argo CD health status", obj.GetKind(), obj.GetName(), st)
	}
	return argoHealth{status: string(st), message: string(msg)}
}

// luaValue turns the object into nested Lua tables as Argo CD does: maps
// become tables keyed by string, lists 1-based arrays, numbers LNumber.
func luaValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(luaValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetString(key, luaValue(l, item))
		}
		return tbl
	default:
		return lua.LNil
	}
}
