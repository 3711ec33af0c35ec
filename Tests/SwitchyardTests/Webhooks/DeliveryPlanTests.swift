import Foundation
import Testing

@testable import Switchyard

/// How the database finds a pending delivery by its id: the hot path of every attempt's record.
@Suite("Webhook delivery plans")
struct DeliveryPlanTests {
    @Test("a pending delivery is found by its primary key, not by scanning the due index, on an empty table too")
    func pendingByPrimaryKey() async throws {
        try await TestDatabase.with { database in
            // An empty table is where PostgreSQL picked the due index for `id = ? AND status =
            // 'pending'`, and a prepared statement kept that plan as the table grew.
            let update = "UPDATE webhook_deliveries SET status = 'succeeded' WHERE \(DeliveryStore.pendingByID)"
            let plan = try await database.write { tx in
                switch tx.dialect {
                case .postgres: try tx.query("EXPLAIN (COSTS OFF) \(update)", ["del_1"]).map { try $0.string("QUERY PLAN") }
                case .sqlite: try tx.query("EXPLAIN QUERY PLAN \(update)", ["del_1"]).map { try $0.string("detail") }
                }
            }.joined(separator: "\n")
            #expect(!plan.contains("webhook_deliveries_due"), "\(plan)")
            #expect(plan.contains(database.dialect == .postgres ? "webhook_deliveries_pkey" : "sqlite_autoindex_webhook_deliveries_1"), "\(plan)")
        }
    }
}
