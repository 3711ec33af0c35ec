import ArgumentParser
import Foundation
import Switchyard

/// `switchyard integrations export|import`: integrations as YAML documents, for version control
/// and for moving them between installations (docs/integrations.md).
struct Integrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export and import integrations as YAML documents (code included, secrets left out).",
        subcommands: [Export.self, Import.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an integration as a YAML document.")
        @OptionGroup var common: DatabaseOptions
        @Argument(help: "The integration's id (int_…)") var id: String
        @Option(name: .shortAndLong, help: "Write to this file instead of standard output") var output: String?

        func run() async throws {
            let configuration = try common.configuration()
            let services = try await AppServices.open(configuration, logger: common.bootstrapLogging(configuration.logLevel))
            let yaml: String
            do {
                yaml = try await services.integrations.exportDocument(id: id)
            } catch let error as APIError {
                await services.database.close()
                throw ValidationError(error.detail)
            }
            if let output {
                try yaml.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                print(yaml, terminator: "")
            }
            await services.database.close()
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an integration from a YAML document; prints its id.")
        @OptionGroup var common: DatabaseOptions
        @Argument(help: "The YAML file, or - for standard input") var file: String
        @Option(help: "The email of the owner, admin or integration admin the import is recorded as (default: the first owner)")
        var user: String?

        func run() async throws {
            let text: String
            if file == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let contents = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
                text = String(decoding: contents, as: UTF8.self)
            }
            let configuration = try common.configuration()
            let services = try await AppServices.open(configuration, logger: common.bootstrapLogging(configuration.logLevel))
            do {
                let actor = try await services.users.commandLineActor(email: user)
                let created = try await services.integrations.importDocument(yaml: text, as: actor)
                print("Imported \(created.name) (\(created.id)) with \(created.connectors.count) connector(s).")
                if !created.secretConfigurationKeys.isEmpty || created.auth.type == .oauth2 {
                    print("Set its secrets with PATCH /v1/integrations/\(created.id), then authorize it.")
                }
            } catch let error as APIError {
                await services.database.close()
                throw ValidationError(error.detail)
            }
            await services.database.close()
        }
    }
}
