// JavaScriptCore's C API (Debian's libjavascriptcoregtk-4.1-dev), for SwitchyardScript.
#include <JavaScriptCore/JavaScript.h>

// Exported by the library but declared only in JSContextRefPrivate.h, which Debian does not ship.
// The limit stops synchronous loops; an endless chain of awaits gets a fresh budget at each step,
// so only killing the worker process is a hard limit (Sources/Switchyard/Scripts/ScriptPool.swift).
typedef bool (*JSShouldTerminateCallback)(JSContextRef ctx, void *context);
JS_EXPORT void JSContextGroupSetExecutionTimeLimit(JSContextGroupRef group, double limit, JSShouldTerminateCallback callback, void *context);
JS_EXPORT void JSContextGroupClearExecutionTimeLimit(JSContextGroupRef group);
