// KmatrixDeviceTree: see the module's files.
