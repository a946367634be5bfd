import Foundation

/// What ccache did for one build: read from the stats log ccache appends to when
/// `CCACHE_STATSLOG` is set (one `# <source>` line per call, then its counters).
public struct CcacheStats: Sendable, Codable, Equatable {
    /// Compiler calls ccache saw.
    public var calls: Int
    /// Served from the cache (direct or preprocessed mode).
    public var hits: Int
    /// Compiled and stored.
    public var misses: Int
    /// Calls ccache cannot cache (links, preprocessing only, unsupported options).
    public var uncacheable: Int { max(0, calls - hits - misses) }

    public init(calls: Int, hits: Int, misses: Int) {
        self.calls = calls
        self.hits = hits
        self.misses = misses
    }

    public init(parsing text: String) {
        var calls = 0, hits = 0, misses = 0
        for line in text.split(whereSeparator: \.isNewline) {
            if line.hasPrefix("# ") { calls += 1 }
            else if line == "direct_cache_hit" || line == "preprocessed_cache_hit" { hits += 1 }
            else if line == "cache_miss" { misses += 1 }
        }
        self.init(calls: calls, hits: hits, misses: misses)
    }

    /// The log's counters, or nil when ccache wrote none (it was off, or compiled nothing).
    public static func read(_ path: String) -> CcacheStats? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), !text.isEmpty else { return nil }
        return CcacheStats(parsing: text)
    }

    public var summary: String { "ccache \(hits) hits, \(misses) misses, \(uncacheable) uncacheable of \(calls) calls" }
}
