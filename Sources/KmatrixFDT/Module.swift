// KmatrixFDT: see the module's files.
