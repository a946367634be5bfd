import Foundation

/// Runs blocking work (gzip, hashing, big copies, vmlinux scans) on threads of its own.
/// Swift's cooperative pool has one thread per core (two here): a long synchronous call
/// on it stalls every boot watcher and deadline behind it.
public enum Blocking {
    private static let queue = DispatchQueue(label: "kmatrix.blocking", qos: .utility, attributes: .concurrent)

    public static func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(E) -> T in try body() }) }
        }
        return try result.get()
    }
}
