import Foundation
import Hummingbird

/// The route table. Middleware every answer needs comes first; then the routes without
/// authentication (probes, sign-in), then the API behind the route group's authentication. Each
/// feature hands over a `RouteCollection` of named handlers.
public func buildRouter(_ services: AppServices) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    let configuration = services.configuration
    let bodyLimit = configuration.maximumBodySize
    let authenticator = services.authenticator
    let knownRoutes = KnownRoutes()
    router.add(
        middleware: ProblemMiddleware(maximumBodySize: bodyLimit, routes: knownRoutes, trustedProxies: configuration.trustedProxies)
    )
    router.add(middleware: MetricsMiddleware())
    SystemRoutes.add(to: router, database: services.database, registry: AppMetrics.registry, publicURL: configuration.publicURL)

    let sessions = SessionRoutes(
        authenticator: authenticator,
        sessions: services.sessions,
        maximumBodySize: bodyLimit,
        secureCookies: configuration.publicURL.hasPrefix("https:")
    )
    router.group("v1").addRoutes(sessions.signIn)
    router.group("v1").addRoutes(UserLifecycleRoutes(users: services.users, maximumBodySize: bodyLimit).routes)

    let api = router.group("v1").add(middleware: AuthenticationMiddleware(publicURL: configuration.publicURL))
    api.addRoutes(sessions.routes)
    api.addRoutes(WorkspaceRoutes(authenticator: authenticator, workspaces: services.workspaces, maximumBodySize: bodyLimit).routes)
    api.addRoutes(
        UserRoutes(authenticator: authenticator, users: services.users, tokens: services.tokens, maximumBodySize: bodyLimit).routes
    )
    api.addRoutes(ActivityRoutes(authenticator: authenticator, activity: services.activity).routes)
    api.addRoutes(MailRoutes(authenticator: authenticator, mail: services.mail).routes, atPath: "outbox")
    let objects = ObjectRoutes(authenticator: authenticator, types: services.objectTypes, maximumBodySize: bodyLimit)
    api.addRoutes(objects.routes, atPath: "workspaces/:workspace_id/object-types")
    let records = RecordRoutes(authenticator: authenticator, records: services.records, maximumBodySize: bodyLimit)
    api.addRoutes(records.routes, atPath: "workspaces/:workspace_id/records/:type_key")
    let events = EventRoutes(authenticator: authenticator, events: services.events, maximumBodySize: bodyLimit)
    api.addRoutes(events.routes, atPath: "workspaces/:workspace_id/events")
    let webhooks = WebhookRoutes(authenticator: authenticator, webhooks: services.webhooks, maximumBodySize: bodyLimit)
    api.addRoutes(webhooks.routes, atPath: "workspaces/:workspace_id/webhooks")
    api.addRoutes(EventTypeRoutes(catalog: services.eventTypes).routes, atPath: "workspaces/:workspace_id/event-types")
    knownRoutes.register(router.routes)
    return router
}
