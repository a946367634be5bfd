import KmatrixCommands

await KmatrixMain.main()
