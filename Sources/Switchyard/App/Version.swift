/// The version this build calls itself: `switchyard --version`, the page at `GET /` and the
/// "listening" log line print it. Bumped by hand when a release is tagged.
public enum SwitchyardVersion {
    public static let current = "0.1.0-dev"
}
