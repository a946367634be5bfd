// KmatrixArchive: see the module's files.
