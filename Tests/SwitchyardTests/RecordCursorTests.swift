import Testing

@testable import Switchyard

/// Keyset cursors are base64url without padding, and exactly one text names each cursor: a
/// client passes back what it was given, so any other spelling is a forged or mangled cursor.
@Suite("Record cursor encoding")
struct RecordCursorTests {
    @Test("base64url without padding, and back")
    func roundTrip() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0x61]
        #expect(RecordQueryParser.base64URLEncoded(bytes) == "-_9h")
        #expect(RecordQueryParser.base64URLEncoded([0x61]) == "YQ")
        #expect(RecordQueryParser.base64URLDecoded("-_9h") == bytes)
        #expect(RecordQueryParser.base64URLDecoded("YQ") == [0x61])
        let json = Array(#"["hvac","rec_01J00000000000000000000000"]"#.utf8)
        #expect(RecordQueryParser.base64URLDecoded(Substring(RecordQueryParser.base64URLEncoded(json))) == json)
    }

    @Test("padding, the standard alphabet, stray bits and other characters are refused")
    func nonCanonical() {
        for text in ["YQ==", "YQ=", "+/9h", "YR", "Y", "YQ ", " YQ", "Y\nQ", "YQ%", "é", "Y\u{0}Q"] {
            #expect(RecordQueryParser.base64URLDecoded(Substring(text)) == nil, "\(text.debugDescription)")
        }
    }
}
