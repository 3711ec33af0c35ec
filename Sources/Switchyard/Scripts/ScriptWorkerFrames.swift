import Foundation
import NIOCore
import SwitchyardScript

/// The server's side of the worker protocol (SwitchyardScript/ScriptFrames.swift describes it):
/// frames written into and read from NIO buffers, and the outcome a `done` frame makes. Nothing a
/// worker writes is trusted: JSON is parsed strictly here, lengths are capped.
enum ScriptWorkerFrames {
    /// The longest frame a worker may send; past it the worker is broken and killed.
    static let maximumLength = 16 << 20
    static let maximumLogLines = 1000

    struct Frame {
        var type: UInt8
        var payload: ByteBuffer
    }

    struct Decoder: ByteToMessageDecoder {
        typealias InboundOut = Frame

        struct Oversized: Error {}

        mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
            guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else { return .needMoreData }
            guard length >= 1, length <= maximumLength else { throw Oversized() }
            guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
            buffer.moveReaderIndex(forwardBy: 4)
            guard let type = buffer.readInteger(as: UInt8.self), let payload = buffer.readSlice(length: Int(length) - 1) else {
                return .needMoreData
            }
            context.fireChannelRead(wrapInboundOut(Frame(type: type, payload: payload)))
            return .continue
        }
    }

    /// The arguments as the engine takes them: a kind letter each, and one JSON array.
    static func arguments(_ request: ScriptRequest) -> (kinds: String, json: String) {
        var kinds = ""
        var json = "["
        for (index, argument) in request.arguments.enumerated() {
            if index > 0 { json += "," }
            switch argument {
            case .json(let value):
                kinds += "j"
                json += value.jsonText
            case .context(let value):
                kinds += "c"
                json += value.jsonText
            }
        }
        return (kinds, json + "]")
    }

    static func job(_ request: ScriptRequest, timeLimit: TimeInterval) -> ScriptJob {
        let (kinds, arguments) = arguments(request)
        return ScriptJob(
            source: request.source,
            entry: request.entry,
            arguments: arguments,
            kinds: kinds,
            timeLimit: timeLimit,
            maximumHostCalls: request.maximumHostCalls
        )
    }

    static func run(_ request: ScriptRequest, timeLimit: TimeInterval) -> ByteBuffer {
        let (kinds, arguments) = arguments(request)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(request.source.utf8.count + arguments.utf8.count + 64)
        buffer.writeInteger(UInt32(0), endianness: .little)
        buffer.writeInteger(ScriptFrame.run)
        buffer.writeInteger(UInt32(clamping: Int(timeLimit * 1000)), endianness: .little)
        buffer.writeInteger(UInt32(clamping: max(0, request.maximumHostCalls)), endianness: .little)
        for text in [request.entry, kinds, request.source] {
            buffer.writeInteger(UInt32(text.utf8.count), endianness: .little)
            buffer.writeString(text)
        }
        buffer.writeString(arguments)
        buffer.setInteger(UInt32(buffer.readableBytes - 4), at: 0, endianness: .little)
        return buffer
    }

    static func answer(_ id: UInt32, resolved: Bool, _ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(6 + text.utf8.count), endianness: .little)
        buffer.writeInteger(ScriptFrame.answer)
        buffer.writeInteger(id, endianness: .little)
        buffer.writeInteger(UInt8(resolved ? 1 : 0))
        buffer.writeString(text)
        return buffer
    }

    static func logLine(_ payload: inout ByteBuffer) -> ScriptLogLine? {
        guard let level = payload.readInteger(as: UInt8.self), let microseconds = payload.readInteger(endianness: .little, as: Int64.self),
            let message = payload.readString(length: payload.readableBytes)
        else { return nil }
        let name = ScriptFrame.logLevels[Int(min(level, 3))]
        return ScriptLogLine(level: name, message: message, at: Date(timeIntervalSince1970: Double(microseconds) / 1e6))
    }

    static func call(_ payload: inout ByteBuffer) -> (UInt32, String, String)? {
        guard let id = payload.readInteger(endianness: .little, as: UInt32.self),
            let length = payload.readInteger(endianness: .little, as: UInt32.self),
            let function = payload.readString(length: Int(length)),
            let argument = payload.readString(length: payload.readableBytes)
        else { return nil }
        return (id, function, argument)
    }

    /// A host call's answer: resolved with the host's JSON, or rejected with its message.
    static func ask(_ host: any ScriptHost, _ function: String, _ argument: JSONValue) async -> (resolved: Bool, text: String) {
        do throws(ScriptHostError) {
            return (true, try await host.call(function, argument).jsonText)
        } catch {
            return (false, error.message)
        }
    }

    /// What a `done` frame says, as the run's outcome.
    static func outcome(_ run: ScriptPoolRun, succeeded: Bool, json: String) -> ScriptOutcome {
        let (status, result, failure) = ScriptOutcomes.parse(succeeded: succeeded, json: json, timeLimit: run.timeLimit)
        return run.outcome(status, result: result, failure: failure)
    }
}

/// The engine's JSON texts as an outcome; shared by the pool and the in-process runner.
enum ScriptOutcomes {
    static func parse(succeeded: Bool, json: String, timeLimit: TimeInterval) -> (ScriptStatus, JSONValue?, ScriptFailure?) {
        if succeeded {
            if json.isEmpty { return (.succeeded, nil, nil) }
            guard let value = try? JSONValue.parse(text: json) else {
                return (.failed, nil, ScriptFailure(name: "ShapeError", message: "the result is not JSON"))
            }
            return (.succeeded, value, nil)
        }
        guard let object = (try? JSONValue.parse(text: json))?.objectValue else {
            return (.failed, nil, ScriptFailure(name: "Error", message: "the script failed and its error could not be read"))
        }
        func int(_ key: String) -> Int? {
            switch object[key] {
            case .int(let value): return Int(value)
            case .double(let value) where value.isFinite: return Int(value)
            default: return nil
            }
        }
        let name = object["name"]?.stringValue ?? "Error"
        var failure = ScriptFailure(
            name: name,
            message: object["message"]?.stringValue ?? "",
            line: int("line"),
            column: int("column"),
            stack: object["stack"]?.stringValue
        )
        if name == "TimeLimit" {
            failure.message =
                "the run was stopped at its time limit of \(timeLimit == timeLimit.rounded() ? String(Int(timeLimit)) : String(timeLimit)) s"
            return (.timedOut, nil, failure)
        }
        return (.failed, nil, failure)
    }
}
