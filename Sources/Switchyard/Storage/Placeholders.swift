import NIOConcurrencyHelpers

/// Rewrites the `?` placeholders stores write as PostgreSQL's `$1, $2…`.
///
/// The rule: a `?` is a placeholder wherever PostgreSQL would read it as SQL, and left alone inside
/// `-- …` and (nested) `/* … */` comments, `'…'` strings (`''` inside), `E'…'` strings (backslash
/// escapes too), `"…"` quoted identifiers and dollar-quoted strings (`$$…$$`, `$tag$…$tag$`).
/// An operator that is spelled with a question mark (jsonb's `?`, `?|`, `?&`) is written with it
/// doubled — `data::jsonb ?? 'key'`, `??|`, `??&` — and sent as one `?`, as pgjdbc does. Doubling
/// is the only unambiguous spelling: `? || 'x'` (a placeholder, then concatenation) and `?|` would
/// otherwise read alike. SQLite has no such operators, so shared SQL never doubles one; the
/// PostgreSQL-only spellings live in `SQLDialect`.
enum PostgresPlaceholders {
    private static let cache = NIOLockedValueBox<[String: String]>([:])

    /// The statement as PostgreSQL takes it. Results are remembered: every statement passes here.
    static func convert(_ sql: String) -> String {
        // Most statements have placeholders; those that have none need no lexing at all.
        guard sql.utf8.contains(UInt8(ascii: "?")) else { return sql }
        if let hit = cache.withLockedValue({ $0[sql] }) { return hit }
        let out = rewrite(sql)
        cache.withLockedValue { cache in
            // List queries vary with the request's filters: keep the set bounded.
            if cache.count >= 2_000 { cache.removeAll() }
            cache[sql] = out
        }
        return out
    }

    /// One pass over the bytes: everything PostgreSQL's lexer treats as quoted is copied as is.
    static func rewrite(_ sql: String) -> String {
        var lexer = Lexer(Array(sql.utf8))
        return lexer.run()
    }

    private struct Lexer {
        let input: [UInt8]
        var out: [UInt8] = []
        var index = 0
        var number = 0

        init(_ input: [UInt8]) {
            self.input = input
            out.reserveCapacity(input.count + 16)
        }

        mutating func run() -> String {
            while index < input.count {
                let byte = input[index]
                switch byte {
                case UInt8(ascii: "?"): placeholder()
                case UInt8(ascii: "'"): quoted(until: byte, backslashes: isEscapeStringPrefix())
                case UInt8(ascii: "\""): quoted(until: byte, backslashes: false)
                case UInt8(ascii: "-") where peek(1) == UInt8(ascii: "-"): lineComment()
                case UInt8(ascii: "/") where peek(1) == UInt8(ascii: "*"): blockComment()
                case UInt8(ascii: "$") where !follows(PostgresPlaceholders.identifierByte): dollarQuoted()
                default: copy(1)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        func peek(_ offset: Int) -> UInt8? {
            index + offset < input.count ? input[index + offset] : nil
        }

        /// Whether the byte before the current one satisfies `test` (false at the start).
        func follows(_ test: (UInt8) -> Bool) -> Bool {
            index > 0 && test(input[index - 1])
        }

        mutating func copy(_ count: Int) {
            let end = min(index + count, input.count)
            out.append(contentsOf: input[index..<end])
            index = end
        }

        mutating func placeholder() {
            if peek(1) == UInt8(ascii: "?") {
                out.append(UInt8(ascii: "?"))
                index += 2
                return
            }
            number += 1
            out.append(UInt8(ascii: "$"))
            out.append(contentsOf: String(number).utf8)
            index += 1
        }

        /// `E'…'` (or `e'…'`) as a token of its own, not the end of an identifier such as `type'`.
        func isEscapeStringPrefix() -> Bool {
            guard index > 0, (input[index - 1] | 0x20) == UInt8(ascii: "e") else { return false }
            return index < 2 || !PostgresPlaceholders.identifierByte(input[index - 2])
        }

        /// A string or quoted identifier: a doubled quote stays inside, and in an `E'…'` string so
        /// does a quote after a backslash. An unterminated one runs to the end (PostgreSQL refuses it).
        mutating func quoted(until quote: UInt8, backslashes: Bool) {
            copy(1)
            while index < input.count {
                let byte = input[index]
                if backslashes && byte == UInt8(ascii: "\\") {
                    copy(2)
                } else if byte == quote && peek(1) == quote {
                    copy(2)
                } else if byte == quote {
                    copy(1)
                    return
                } else {
                    copy(1)
                }
            }
        }

        mutating func lineComment() {
            while index < input.count && input[index] != UInt8(ascii: "\n") { copy(1) }
        }

        /// PostgreSQL's block comments nest.
        mutating func blockComment() {
            var depth = 0
            while index < input.count {
                if input[index] == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                    depth += 1
                    copy(2)
                } else if input[index] == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/") {
                    depth -= 1
                    copy(2)
                    if depth == 0 { return }
                } else {
                    copy(1)
                }
            }
        }

        /// `$tag$…$tag$` where the tag is empty or an identifier not starting with a digit; `$1` and
        /// a `$` inside an identifier (`a$b`) are no quote.
        mutating func dollarQuoted() {
            var end = index + 1
            if end < input.count && PostgresPlaceholders.isDigit(input[end]) {
                copy(1)
                return
            }
            while end < input.count && input[end] != UInt8(ascii: "$") && PostgresPlaceholders.identifierByte(input[end]) { end += 1 }
            guard end < input.count, input[end] == UInt8(ascii: "$") else {
                copy(1)
                return
            }
            let delimiter = input[index...end]
            copy(delimiter.count)
            while index < input.count {
                if input[index] == UInt8(ascii: "$"), input[index...].starts(with: delimiter) {
                    copy(delimiter.count)
                    return
                }
                copy(1)
            }
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Letters, digits, `_`, `$` and any byte of a multi-byte character, as PostgreSQL's identifiers.
    static func identifierByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || ((byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "$") || byte >= 0x80
    }
}

/// What kind of statement a text is, by its first word: whether to prepare it, whether it changes
/// the schema, whether it can change rows.
enum SQLHead {
    /// Whether the statement's first word, after any whitespace, is `keyword` (lowercase), in
    /// any case: `SELECT` is, `SELECTED` is not.
    static func starts(_ sql: String, with keyword: String) -> Bool {
        var rest = sql.utf8.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }.makeIterator()
        for letter in keyword.utf8 {
            guard let byte = rest.next(), byte | 0x20 == letter else { return false }
        }
        guard let next = rest.next() else { return true }
        return !PostgresPlaceholders.identifierByte(next)
    }

    /// Worth a plan of its own; utility statements (BEGIN, SAVEPOINT, DDL) are not.
    static func isPreparable(_ sql: String) -> Bool {
        ["select", "insert", "update", "delete", "with"].contains { starts(sql, with: $0) }
    }

    static func changesSchema(_ sql: String) -> Bool {
        ["create", "alter", "drop"].contains { starts(sql, with: $0) }
    }

    /// A `SELECT` changes nothing (its row locks end with the same COMMIT or ROLLBACK as the
    /// rest). Anything else counts as a change, a read-only `WITH` included: a false "changed"
    /// costs only a rerun, a false "read" would lose a rollback.
    static func isSelect(_ sql: String) -> Bool { starts(sql, with: "select") }
}
