import Foundation
import PackagePlugin

/// Compiles docs/openapi.yaml into the Switchyard module as `OpenAPIDocument.yaml`, so that
/// `GET /openapi.yaml` works from a binary copied anywhere. SwiftPM's own resources would not do:
/// `.copy` leaves a bundle folder beside the binary, and `.embedInCode` needs the file inside the
/// target folder and writes it as an array literal that took 22 s of CPU to compile here. A raw
/// string literal compiles in well under a second, and the document stays where the docs are,
/// the one copy that tests, schemathesis and people read.
@main
struct EmbedOpenAPI: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let input = context.package.directoryURL.appending(path: "docs/openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "OpenAPIDocument.swift")
        // The delimiter has four `#`: a document holding `"""####` would fail to compile, loudly.
        // The newline before the closing quotes is not part of the literal, so the text is the file's bytes.
        let script = #####"""
            {
              printf '/// docs/openapi.yaml, as it was when this binary was built (Plugins/EmbedOpenAPI).\n'
              printf 'enum OpenAPIDocument {\n    static let yaml = ####"""\n'
              cat "$1"
              printf '\n"""####\n}\n'
            } > "$2"
            """#####
        return [
            .buildCommand(
                displayName: "Embedding docs/openapi.yaml",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "embed-openapi", input.path, output.path],
                inputFiles: [input],
                outputFiles: [output]
            )
        ]
    }
}
