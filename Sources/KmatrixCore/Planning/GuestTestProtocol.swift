import Foundation

/// How the guest reports its test scripts over the console, in lines the host cannot
/// mistake for anything else even among kernel messages: each carries a nonce init draws
/// at boot (a script cannot forge a verdict line it does not know the nonce of), and a
/// script's output is sent only after it ends, one prefixed line per output line.
///
///     KMATRIX-TESTS-BEGIN <nonce> count=<n>
///     KMATRIX-TEST-BEGIN <nonce> <suite> <script>
///     KMATRIX-TEST-OUT <nonce> <one line of the script's output>
///     KMATRIX-TEST-END <nonce> <suite> <script> status=<exit status> lines=<n> seconds=<s> limit=<s>
///     KMATRIX-TESTS-END <nonce>
public enum GuestTestProtocol {
    // The rootfs's run-tests script prints them (KmatrixUserspace); the boot reads them (KmatrixBoot).
    public static let runBegin = "KMATRIX-TESTS-BEGIN"
    public static let runEnd = "KMATRIX-TESTS-END"
    public static let testBegin = "KMATRIX-TEST-BEGIN"
    public static let output = "KMATRIX-TEST-OUT"
    public static let testEnd = "KMATRIX-TEST-END"
    /// Where the scripts and their runner live in the guest.
    public static let guestDirectory = "kmatrix"
    /// The exit status a shell reports for a child killed by SIGKILL (the time limit's signal).
    public static let killedStatus = 137
}
