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
    // OAuth 2.0 for apps, at the root and outside /v1's authentication: clients authenticate there themselves.
    router.addRoutes(OAuthRoutes(oauth: services.oauth).routes)
    router.group("v1").addRoutes(UserLifecycleRoutes(users: services.users, maximumBodySize: bodyLimit).routes)

    let api = router.group("v1").add(middleware: AuthenticationMiddleware(publicURL: configuration.publicURL))
    // Apps' calls: rate limit headers and their `app.request` entries (after the credentials are read).
    api.add(
        middleware: AppCallMiddleware(
            authenticator: authenticator,
            limiter: services.appRateLimiter,
            batcher: services.activityBatcher,
            maximumBodySize: bodyLimit
        )
    )
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
    api.addRoutes(AppRoutes(authenticator: authenticator, apps: services.apps, activity: services.activity, maximumBodySize: bodyLimit).routes)
    // Integrations, connectors, test runs and connector runs (issue 15, helper "integrations").
    // Before IntegrationRoutes: `{id}.yaml` must win over `:integration_id` for the same segment.
    api.addRoutes(IntegrationDocumentRoutes(integrations: services.integrations, maximumBodySize: bodyLimit).routes)
    api.addRoutes(IntegrationRoutes(authenticator: authenticator, integrations: services.integrations, maximumBodySize: bodyLimit).routes)
    api.addRoutes(RunRoutes(integrations: services.integrations, maximumBodySize: bodyLimit).routes)
    // Integrations' connections and the Authorize flow (issue 15, helper "connections"); the
    // provider sends the browser back to the callback at the root, authenticated by its state.
    let authorize = AuthorizeRoutes(connections: services.connections)
    api.addRoutes(authorize.routes)
    api.addRoutes(
        ConnectionRoutes(connections: services.connections, maximumBodySize: bodyLimit).routes,
        atPath: "workspaces/:workspace_id/connections"
    )
    router.addRoutes(authorize.callback)

    // Developer portal (issue 14, helper "portal"): its own cookie and authentication, at the root.
    let portal = PortalRoutes(portal: services.portal, maximumBodySize: bodyLimit, secureCookies: configuration.publicURL.hasPrefix("https:"))
    router.group("portal").addRoutes(portal.pages)
    router.group("portal/api").add(middleware: PortalAuthenticationMiddleware(publicURL: configuration.publicURL, requireSession: false))
        .addRoutes(portal.open)
    router.group("portal/api").add(middleware: PortalAuthenticationMiddleware(publicURL: configuration.publicURL, requireSession: true))
        .addRoutes(portal.routes)
    knownRoutes.register(router.routes)
    return router
}
