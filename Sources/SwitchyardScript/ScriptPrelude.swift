/// The JavaScript every fresh context runs before the user's code: `console`, the `ctx` helpers,
/// and the functions the engine calls a run through. It is one function expression called with
/// the engine's host functions, which stay in its closure: the user's code never sees them.
/// It keeps its own references to the built-ins it uses, taken before the user's code runs.
enum ScriptPrelude {
    /// The source URL of the user's code in stacks (`run@script.js:3:9`).
    static let userURL = "script.js"
    static let url = "prelude.js"
    /// Put before the user's code on line 1: modules are strict, and so is the code here.
    static let strictPrefix = "'use strict';"
    static let maximumLogLines = 1000
    static let maximumLogCharacters = 10000
    /// The longest `ctx.sleep` in milliseconds; the run's time limit bounds their sum.
    static let maximumSleep = 10000
    /// The longest result, in UTF-16 units of its JSON text.
    static let maximumResult = 4 << 20

    // swift-format-ignore
    static let source = """
    (function (host, log, finish) {
      'use strict';
      const USER = '\(userURL)', PREFIX = \(strictPrefix.utf16.count), MAX_LINES = \(maximumLogLines),
        MAX_CHARS = \(maximumLogCharacters), MAX_SLEEP = \(maximumSleep), MAX_RESULT = \(maximumResult);
      const stringify = JSON.stringify, parse = JSON.parse, freeze = Object.freeze, isArray = Array.isArray,
        getPrototypeOf = Object.getPrototypeOf, defineProperty = Object.defineProperty, ObjectPrototype = Object.prototype,
        isView = ArrayBuffer.isView, then = Promise.prototype.then, resolved = Promise.resolve.bind(Promise),
        rejected = Promise.reject.bind(Promise), ErrorType = Error, RangeErrorType = RangeError, StringType = String,
        isFinite = Number.isFinite, apply = Reflect.apply, split = String.prototype.split, join = Array.prototype.join,
        filter = Array.prototype.filter, map = Array.prototype.map, exec = RegExp.prototype.exec, slice = String.prototype.slice,
    max = Math.max, indexOf = String.prototype.indexOf;
      const unplain = [[Map, 'a Map'], [Set, 'a Set'], [WeakMap, 'a WeakMap'], [WeakSet, 'a WeakSet'],
        [Promise, 'a Promise (is an await missing?)'], [RegExp, 'a RegExp'], [Error, 'an Error'], [ArrayBuffer, 'an ArrayBuffer']];
      const framePattern = /@script\\.js:(\\d+):(\\d+)$/;

      // A stack's frames in the user's code, with line 1's columns as the user wrote them.
      function userFrames(stack) {
        if (typeof stack !== 'string') return [];
        const frames = apply(filter, apply(split, stack, ['\\n']), [frame => apply(indexOf, frame, ['@' + USER + ':']) >= 0]);
        return apply(map, frames, [frame => {
          const found = apply(exec, framePattern, [frame]);
          if (found === null || found[1] !== '1') return frame;
          const column = max(1, Number(found[2]) - PREFIX);
          return apply(slice, frame, [0, frame.length - found[0].length]) + '@' + USER + ':1:' + column;
        }]);
      }

      function describe(e) {
        let name = 'Error', message, line = null, column = null, stack = null;
        if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
          try { name = e.name === undefined ? 'Error' : StringType(e.name); } catch (_) {}
          try { message = e.message === undefined ? '' : StringType(e.message); } catch (_) { message = ''; }
          let frames = [];
          try { frames = userFrames(e.stack); } catch (_) {}
          if (frames.length > 0) {
            stack = apply(join, frames, ['\\n']);
            const found = apply(exec, framePattern, [frames[0]]);
            if (found !== null) { line = Number(found[1]); column = Number(found[2]); }
          } else if (e.sourceURL === USER && typeof e.line === 'number') {
            line = e.line;
            column = typeof e.column === 'number' ? (line === 1 ? max(1, e.column - PREFIX) : e.column) : null;
          }
        } else {
          try { message = StringType(e); } catch (_) { message = typeof e; }
        }
        return stringify({ name, message, line, column, stack });
      }

      // An error at the script's call of a host function (`site`), for a rejection by the host.
      function failedAt(site, message, type) {
        const error = new (type || ErrorType)(StringType(message));
        defineProperty(error, 'stack', { value: site.stack, writable: true, configurable: true });
        return error;
      }

      function format(value) {
        switch (typeof value) {
          case 'string': return value;
          case 'undefined': return 'undefined';
          case 'bigint': return StringType(value) + 'n';
          case 'symbol': return value.toString();
          case 'function': return '[Function ' + (value.name || 'anonymous') + ']';
          case 'object':
            if (value === null) return 'null';
            if (value instanceof ErrorType) return StringType(value.name) + ': ' + StringType(value.message);
            try { const text = stringify(value); return text === undefined ? StringType(value) : text; }
            catch (_) { return '[object that is not JSON]'; }
          default: return StringType(value);
        }
      }

      let lines = 0;
      function emit(level, values) {
        if (lines >= MAX_LINES) return;
        lines += 1;
        let message = lines === MAX_LINES
          ? '[further log lines dropped: a run keeps at most ' + MAX_LINES + ']'
          : apply(join, apply(map, values, [format]), [' ']);
        if (message.length > MAX_CHARS) message = apply(slice, message, [0, MAX_CHARS]) + '… [truncated]';
        log(level, message);
      }
      const console = freeze({
        log: (...values) => emit(0, values), debug: (...values) => emit(0, values), info: (...values) => emit(1, values),
        warn: (...values) => emit(2, values), error: (...values) => emit(3, values),
      });
      defineProperty(globalThis, 'console', { value: console, writable: true, configurable: true, enumerable: false });

      function request(options) {
        const site = new ErrorType();
        return apply(then, host('http.request', options === undefined ? null : options), [
          answer => {
            const body = answer !== null && typeof answer.body === 'string' ? answer.body : '';
            return {
              status: answer === null ? 0 : answer.status,
              headers: answer !== null && answer.headers !== null && typeof answer.headers === 'object' ? answer.headers : {},
              body,
              json() { return parse(body); },
            };
          },
          message => { throw failedAt(site, message); },
        ]);
      }
      const http = freeze({ request });

      function sleep(milliseconds) {
        const site = new ErrorType();
        if (typeof milliseconds !== 'number' || !(milliseconds >= 0) || milliseconds > MAX_SLEEP) {
          return rejected(failedAt(site, 'ctx.sleep takes 0 to ' + MAX_SLEEP + ' milliseconds', RangeErrorType));
        }
        return apply(then, host('sleep', milliseconds), [() => undefined, message => { throw failedAt(site, message); }]);
      }

      function context(value) {
        const ctx = value !== null && typeof value === 'object' && !isArray(value) ? value : {};
        ctx.http = http;
        ctx.sleep = sleep;
        return ctx;
      }

      let problem = null;
      function replacer(key, value) {
        if (problem !== null) return undefined;
        switch (typeof value) {
          case 'number':
            if (!isFinite(value)) problem = StringType(value) + (key === '' ? '' : ' at "' + key + '"');
            return value;
          case 'bigint': problem = 'a BigInt' + (key === '' ? '' : ' at "' + key + '"'); return undefined;
          case 'function': case 'symbol':
            if (key === '') problem = 'a ' + typeof value;
            return undefined;
          case 'object': {
            if (value === null || isArray(value)) return value;
            const prototype = getPrototypeOf(value);
            if (prototype === ObjectPrototype || prototype === null) return value;
            let what = isView(value) ? 'a typed array' : null;
            for (let i = 0; what === null && i < unplain.length; i++) if (value instanceof unplain[i][0]) what = unplain[i][1];
            if (what !== null) problem = what + (key === '' ? '' : ' at "' + key + '"');
            return value;
          }
          default: return value;
        }
      }
      function shapeError(message) {
        return stringify({ name: 'ShapeError', message: 'the result is not JSON: ' + message, line: null, column: null, stack: null });
      }
      function settle(value) {
        if (value === undefined) { finish(true, ''); return; }
        problem = null;
        let text;
        try { text = stringify(value, replacer); } catch (e) { finish(false, shapeError(describeMessage(e))); return; }
        if (problem !== null) { finish(false, shapeError(problem)); return; }
        if (text === undefined) { finish(true, ''); return; }
        if (text.length > MAX_RESULT) { finish(false, shapeError('its JSON is longer than ' + MAX_RESULT + ' characters')); return; }
        finish(true, text);
      }
      function describeMessage(e) { try { return StringType(e && e.message !== undefined ? e.message : e); } catch (_) { return 'unreadable'; } }

      function start(entry, values, kinds) {
        for (let i = 0; i < kinds.length; i++) if (kinds[i] === 'c') values[i] = context(values[i]);
        let promise;
        try { promise = resolved(apply(entry, undefined, values)); } catch (e) { finish(false, describe(e)); return; }
        apply(then, promise, [settle, e => finish(false, describe(e))]);
      }

      // A run's path taken once while the context is prepared (no run is under way, so `finish`
      // is ignored): a fresh global object links its code on first use, ~150 µs of a first call.
      start(async function (input, ctx) { await null; return { list: [1, 'two', null, true], n: input.n, x: ctx.x }; }, [{ n: 1 }, {}], 'jc');

      return { start, describe };
    })
    """
}
