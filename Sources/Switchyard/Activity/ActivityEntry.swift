import Foundation

/// One line of the activity log: who did what to what, where, from where, and how it ended.
public struct ActivityEntry: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable { case success, failure }

    public var id: String
    public var occurredAt: Date
    public var actorType: String
    public var actorId: String?
    public var actorLabel: String?
    public var action: String
    public var targetType: String?
    public var targetId: String?
    /// What the target was called when the entry was written (an app's, endpoint's name).
    public var targetLabel: String?
    public var workspaceId: String?
    /// The workspace's name when the entry was written.
    public var workspaceName: String?
    public var appId: String?
    public var ip: String?
    public var outcome: Outcome
    public var detail: String?
    public var requestId: String?
}

public struct ActivityFilter: Sendable {
    public var action: String?
    public var actorID: String?
    public var workspaceID: String?
    public var targetID: String?
    /// Entries about an app: made by it, or by anyone to it.
    public var appID: String?
    public var outcome: ActivityEntry.Outcome?
    public var since: Date?
    public var until: Date?
    public var after: String?
    public var limit: Int

    public init(
        action: String? = nil,
        actorID: String? = nil,
        workspaceID: String? = nil,
        targetID: String? = nil,
        appID: String? = nil,
        outcome: ActivityEntry.Outcome? = nil,
        since: Date? = nil,
        until: Date? = nil,
        after: String? = nil,
        limit: Int = 50
    ) {
        self.action = action
        self.actorID = actorID
        self.workspaceID = workspaceID
        self.targetID = targetID
        self.appID = appID
        self.outcome = outcome
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit
    }
}
