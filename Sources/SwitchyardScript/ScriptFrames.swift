/// The protocol between the server and a `switchyard script-worker` process, over the worker's
/// stdin (server → worker) and stdout (worker → server). A frame is a 4-byte little-endian length
/// of what follows, a type byte, and the payload; integers are little-endian, a "string" is a
/// 4-byte length and UTF-8 bytes, and "rest" is the remainder of the frame. JSON texts are made and
/// read by JavaScriptCore in the worker, so the worker needs no JSON code of its own.
///
/// Server → worker:
/// - `run`:    u32 time limit (ms), u32 host calls allowed, string entry, string argument kinds
///             (`j` plain JSON, `c` a context), string source, rest: the arguments as a JSON array.
/// - `answer`: u32 call id, u8 1 (resolve: rest is JSON) or 0 (reject: rest is the message).
///
/// Worker → server:
/// - `ready`:  sent once, when the engine is up and the first context prepared.
/// - `log`:    u8 level (0 log, 1 info, 2 warn, 3 error), i64 microseconds since 1970, rest: message.
/// - `call`:   u32 call id, string function (`http.request`, `sleep`), rest: the argument as JSON.
/// - `done`:   u8 1 (rest: the result as JSON, empty for undefined) or 0 (rest: the failure as a
///             JSON object {name, message, line, column, stack}).
///
/// One run at a time: the server sends `run` only to an idle worker, answers each `call` once, and
/// the worker ends every run with `done` (unless it is killed).
public enum ScriptFrame {
    public static let run: UInt8 = 0x72  // r
    public static let answer: UInt8 = 0x61  // a
    public static let ready: UInt8 = 0x79  // y
    public static let log: UInt8 = 0x6C  // l
    public static let call: UInt8 = 0x63  // c
    public static let done: UInt8 = 0x64  // d

    /// The longest frame either side accepts; anything longer is a broken peer.
    public static let maximumLength = 64 << 20

    public static let logLevels = ["log", "info", "warn", "error"]
}

/// Builds one frame's bytes (the worker's side; the server writes with NIO's ByteBuffer).
struct FrameWriter {
    private(set) var bytes: [UInt8]

    init(type: UInt8, capacity: Int = 64) {
        bytes = [0, 0, 0, 0, type]
        bytes.reserveCapacity(capacity + 5)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func i64(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ value: String) {
        u32(UInt32(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }

    mutating func rest(_ value: String) { bytes.append(contentsOf: value.utf8) }

    /// The frame with its length filled in.
    mutating func finished() -> [UInt8] {
        let length = UInt32(bytes.count - 4).littleEndian
        withUnsafeBytes(of: length) { raw in
            for (offset, byte) in raw.enumerated() { bytes[offset] = byte }
        }
        return bytes
    }
}

/// Reads one frame's payload (the worker's side).
struct FrameReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    struct Truncated: Error {}

    mutating func u8() throws(Truncated) -> UInt8 {
        guard index < bytes.endIndex else { throw Truncated() }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u32() throws(Truncated) -> UInt32 {
        guard bytes.endIndex - index >= 4 else { throw Truncated() }
        var value: UInt32 = 0
        for shift in 0..<4 { value |= UInt32(bytes[index + shift]) << (8 * shift) }
        index += 4
        return value
    }

    mutating func string() throws(Truncated) -> String {
        let count = Int(try u32())
        guard bytes.endIndex - index >= count else { throw Truncated() }
        defer { index += count }
        return String(decoding: bytes[index..<index + count], as: UTF8.self)
    }

    mutating func rest() -> String {
        defer { index = bytes.endIndex }
        return String(decoding: bytes[index..<bytes.endIndex], as: UTF8.self)
    }
}

/// JSON string literal of `value`, for the few JSON texts the engine writes itself.
func jsonQuoted(_ value: String) -> String {
    var out = "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

/// A failure as the JSON object `done` carries.
func failureJSON(name: String, message: String, line: Int? = nil, column: Int? = nil) -> String {
    let line = line.map(String.init) ?? "null"
    let column = column.map(String.init) ?? "null"
    return #"{"name":\#(jsonQuoted(name)),"message":\#(jsonQuoted(message)),"line":\#(line),"column":\#(column),"stack":null}"#
}
