/// kmatrix's version: `kmatrix --version` prints it and `Scripts/package` names the Debian
/// package after it (the package's revision is added there).
public enum KmatrixVersion {
    public static let current = "0.9.0"
}
