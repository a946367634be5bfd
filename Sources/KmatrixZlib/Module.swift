// KmatrixZlib: see the module's files.
