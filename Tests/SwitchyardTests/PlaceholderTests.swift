import Testing

@testable import Switchyard

/// `?` → `$n` for PostgreSQL: placeholders are numbered wherever PostgreSQL reads SQL, and a `?`
/// that is quoted or commented stays. A question-mark operator is written doubled (`??`).
@Suite("Placeholders")
struct PlaceholderTests {
    func converted(_ sql: String) -> String { PostgresPlaceholders.convert(sql) }

    @Test("placeholders are numbered in order; a statement without any is returned as is")
    func numbering() {
        #expect(converted("SELECT * FROM t WHERE a = ? AND b IN (?, ?) LIMIT ?") == "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3) LIMIT $4")
        #expect(converted("INSERT INTO t VALUES (?,?)") == "INSERT INTO t VALUES ($1,$2)")
        #expect(converted("SELECT 1") == "SELECT 1")
        #expect(converted("") == "")
        let many = Array(repeating: "?", count: 12).joined(separator: ",")
        #expect(converted(many).hasSuffix("$11,$12"))
    }

    @Test("a ? inside a string stays, with '' inside and after it")
    func strings() {
        #expect(converted("SELECT '?' , ?") == "SELECT '?' , $1")
        #expect(converted("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1")
        #expect(converted("SELECT '''?''', ?") == "SELECT '''?''', $1")
        #expect(converted("SELECT '', ?, ''") == "SELECT '', $1, ''")
        // A backslash is an ordinary character in a standard string: the string ends at the quote.
        #expect(converted(#"SELECT '\' , ?"#) == #"SELECT '\' , $1"#)
        // Not E'…': the e ends the keyword LIKE.
        #expect(converted(#"WHERE a LIKE'x\' AND b = ?"#) == #"WHERE a LIKE'x\' AND b = $1"#)
        #expect(converted("SELECT 'é?ü', ?") == "SELECT 'é?ü', $1")
        #expect(converted("SELECT U&'d\\0061t?', ?") == "SELECT U&'d\\0061t?', $1")
    }

    @Test("E'…' strings keep a backslash-escaped quote and a ? inside")
    func escapeStrings() {
        #expect(converted(#"SELECT E'\'?', ?"#) == #"SELECT E'\'?', $1"#)
        #expect(converted(#"SELECT e'a\\', ?"#) == #"SELECT e'a\\', $1"#)
        #expect(converted(#"SELECT E'it''s \n ?', ?"#) == #"SELECT E'it''s \n ?', $1"#)
        #expect(converted(#"SELECT (E'\'' || ?)"#) == #"SELECT (E'\'' || $1)"#)
    }

    @Test("a ? inside a quoted identifier stays, with \"\" inside")
    func quotedIdentifiers() {
        #expect(converted(#"SELECT "what?" FROM t WHERE a = ?"#) == #"SELECT "what?" FROM t WHERE a = $1"#)
        #expect(converted(#"SELECT "a""?" , ?"#) == #"SELECT "a""?" , $1"#)
        #expect(converted(#"SELECT "it's ?", ?"#) == #"SELECT "it's ?", $1"#)
    }

    @Test("a ? inside a -- or /* */ comment stays; block comments nest")
    func comments() {
        #expect(converted("SELECT ? -- why? \n, ?") == "SELECT $1 -- why? \n, $2")
        #expect(converted("SELECT ? -- to the end?") == "SELECT $1 -- to the end?")
        #expect(converted("SELECT /* ? /* nested ? */ still ? */ ?") == "SELECT /* ? /* nested ? */ still ? */ $1")
        #expect(converted("SELECT /* it's ? */ ?") == "SELECT /* it's ? */ $1")
        #expect(converted("SELECT 1 - ?, 2 / ?") == "SELECT 1 - $1, 2 / $2")
        #expect(converted("SELECT '--', ?") == "SELECT '--', $1")
    }

    @Test("a ? inside a dollar-quoted string stays; $1 and a $ in an identifier are no quote")
    func dollarQuotes() {
        #expect(converted("SELECT $$ ? 'x $$, ?") == "SELECT $$ ? 'x $$, $1")
        #expect(converted("SELECT $fn$ ? $$ ? $fn$, ?") == "SELECT $fn$ ? $$ ? $fn$, $1")
        #expect(converted("SELECT $a_1$?$a_1$ || ?") == "SELECT $a_1$?$a_1$ || $1")
        #expect(converted("SELECT price$ FROM t WHERE a = ? AND b = $q$?$q$") == "SELECT price$ FROM t WHERE a = $1 AND b = $q$?$q$")
        #expect(converted("SELECT a$b$c, ?") == "SELECT a$b$c, $1")
        #expect(converted("SELECT $1::int, '?', ?") == "SELECT $1::int, '?', $1")
    }

    @Test("jsonb's ?, ?| and ?& are written doubled and sent single; a placeholder next to | stays one")
    func questionMarkOperators() {
        #expect(converted("SELECT data::jsonb ?? 'key' AND id = ?") == "SELECT data::jsonb ? 'key' AND id = $1")
        #expect(converted("SELECT data::jsonb ??| array['a', ?]") == "SELECT data::jsonb ?| array['a', $1]")
        #expect(converted("SELECT data::jsonb ??& ?::text[]") == "SELECT data::jsonb ?& $1::text[]")
        #expect(converted("SELECT ? || 'x'") == "SELECT $1 || 'x'")
        #expect(converted("SELECT ??") == "SELECT ?")
        #expect(converted("SELECT ???") == "SELECT ?$1")
        #expect(SQLDialect.postgres.jsonHasKey("data", "trade") == "(data::jsonb ?? 'trade')")
    }

    @Test("what is never closed runs to the end, untouched (PostgreSQL refuses it)")
    func unterminated() {
        #expect(converted("SELECT ?, 'open ?") == "SELECT $1, 'open ?")
        #expect(converted(#"SELECT ?, "open ?"#) == #"SELECT $1, "open ?"#)
        #expect(converted("SELECT ?, /* open ?") == "SELECT $1, /* open ?")
        #expect(converted("SELECT ?, $t$ open ?") == "SELECT $1, $t$ open ?")
        #expect(converted(#"SELECT ?, E'\"#) == #"SELECT $1, E'\"#)
    }

    @Test("a statement converts the same the second time (from the cache)")
    func cached() {
        let sql = "SELECT * FROM cache_check WHERE a = ? AND b = '?'"
        #expect(converted(sql) == converted(sql))
        #expect(PostgresPlaceholders.rewrite(sql) == "SELECT * FROM cache_check WHERE a = $1 AND b = '?'")
    }

    @Test("on PostgreSQL: jsonb's ? operators answer, beside placeholders and quoted question marks")
    func jsonbOnPostgres() async throws {
        try await TestDatabase.with(migrate: false) { database in
            guard database.dialect == .postgres else { return }
            let row = try await database.read { tx in
                try tx.queryOne(
                    """
                    SELECT ('{"a": 1, "b": 2}'::jsonb ?? ?) AS has, ('{"a": 1}'::jsonb ??| array['x', ?]) AS any,
                    ('{"a": 1}'::jsonb ??& array['a', 'b']) AS all_keys, '?' AS mark, "?" /* ? */ AS n
                    FROM (SELECT ? AS "?") AS t -- ?
                    """,
                    "b",
                    "a",
                    Int64(7)
                )
            }
            #expect(row?["has"] == .int(1))
            #expect(row?["any"] == .int(1))
            #expect(row?["all_keys"] == .int(0))
            #expect(row?["mark"] == .text("?"))
            #expect(row?["n"] == .text("7") || row?["n"] == .int(7))
            let has = try await database.read { tx in
                try tx.queryOne("SELECT \(tx.dialect.jsonHasKey("d", "trade")) AS has FROM (SELECT ? AS d) AS t", #"{"trade": "x"}"#)
            }
            #expect(has?["has"] == .int(1))
        }
    }
}
