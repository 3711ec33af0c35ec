import CJavaScriptCore
import Foundation

/// A worker process started with posix_spawn: its stdin and stdout are pipes to us, every other
/// descriptor of the server is closed in it, signals are reset to their defaults, it is in a
/// process group of its own (a Ctrl-C on the server's terminal is the server's to handle), and
/// its environment is empty (the server's secrets in SWITCHYARD_* stay in the server).
struct SpawnedWorker {
    let pid: pid_t
    /// Our end of the worker's stdin.
    let input: Int32
    /// Our end of the worker's stdout.
    let output: Int32

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func start(_ executable: String, _ arguments: [String]) throws(Failure) -> SpawnedWorker {
        // A test bundle started as a worker would run the tests again: tests name the worker.
        if executable == "/proc/self/exe", (try? FileManager.default.destinationOfSymbolicLink(atPath: executable))?.hasSuffix(".xctest") == true {
            throw Failure(description: "this process is a test bundle, not switchyard: set AppConfiguration.scriptWorkerExecutable")
        }
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        guard switchyard_pipe(&stdinPipe) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        guard switchyard_pipe(&stdoutPipe) == 0 else {
            close(stdinPipe[0])
            close(stdinPipe[1])
            throw Failure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        switchyard_spawn_close_from(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        let argv = ([executable] + arguments).map { strdup($0) }
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let environment: [UnsafeMutablePointer<CChar>?] = [nil]
        let spawned = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            environment.withUnsafeBufferPointer { environmentBuffer in
                guard let arguments = argvBuffer.baseAddress, let environment = environmentBuffer.baseAddress else { return EINVAL }
                return posix_spawn(&pid, executable, &actions, &attributes, arguments, environment)
            }
        }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            throw Failure(description: "\(executable): \(String(cString: strerror(spawned)))")
        }
        return SpawnedWorker(pid: pid, input: stdinPipe[1], output: stdoutPipe[0])
    }
}
