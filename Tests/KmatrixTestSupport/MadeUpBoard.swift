import Foundation
import KmatrixCore

/// A board kmatrix has no code for: an i.MX6-like machine whose console is `ttymxc1`
/// (207:17, the i.MX UART driver's numbers) on a QEMU binary and machine that no shipped
/// target uses. Tests of the rootfs, the QEMU command line and the DTB check use it to show
/// that adding a board needs only its Targets file.
public enum MadeUpBoard {
    public static let console = "ttymxc1"
    public static let node = ConsoleNode(major: 207, minor: 17)
    public static let rootCompatible = "acme,imx6q-board"

    public static let json = """
        {
          "schema": 1,
          "name": "acme-imx6q",
          "description": "a made-up i.MX6Q board, console on the second i.MX UART",
          "kernel": {
            "arch": "arm",
            "image": { "target": "zImage", "paths": ["arch/arm/boot/zImage"] },
            "dtbs": [ { "target": "imx6q-acme.dtb", "paths": ["arch/arm/boot/dts/imx6q-acme.dtb"] } ],
            "options": ["CONFIG_SERIAL_IMX=y", "CONFIG_SERIAL_IMX_CONSOLE=y"]
          },
          "deviceTree": { "source": "build", "rootCompatible": "\(rootCompatible)" },
          "console": { "device": "\(console)", "earlycon": "ec_imx6q,0x021e8000", "node": { "major": 207, "minor": 17 } },
          "userspace": { "debianArch": "armhf", "elfMachine": "arm", "elfClass": 32 },
          "rootDevices": { "initramfs": { "kind": "initramfs" } },
          "qemu": {
            "binary": "qemu-system-acme",
            "package": "qemu-system-acme",
            "machine": "acme-imx6q",
            "cpu": "cortex-a9",
            "memoryMiB": 512,
            "replacesDTBMemory": true
          }
        }
        """

    /// The descriptor, decoded as `Targets/acme-imx6q.json` would be.
    public static func target() throws -> Target {
        try decodeDescriptor(Target.self, from: Data(json.utf8), file: "Targets/acme-imx6q.json")
    }

    /// A DTS for the board: two i.MX UARTs, the console on the second, reached through
    /// `stdout-path` = `serial1` and the aliases.
    public static let dts = """
        /dts-v1/;
        / {
            #address-cells = <1>;
            #size-cells = <1>;
            compatible = "\(rootCompatible)", "fsl,imx6q";
            chosen { stdout-path = "serial1:115200n8"; };
            aliases { serial0 = &uart1; serial1 = &uart2; };
            memory@10000000 { device_type = "memory"; reg = <0x10000000 0x20000000>; };
            intc: interrupt-controller@a01000 {
                compatible = "arm,cortex-a9-gic";
                #interrupt-cells = <3>;
                interrupt-controller;
                reg = <0x00a01000 0x1000>;
            };
            soc {
                compatible = "simple-bus";
                #address-cells = <1>;
                #size-cells = <1>;
                interrupt-parent = <&intc>;
                ranges;
                uart1: serial@2020000 { compatible = "fsl,imx6q-uart", "fsl,imx21-uart"; reg = <0x02020000 0x4000>; interrupts = <0 26 4>; };
                uart2: serial@21e8000 { compatible = "fsl,imx6q-uart", "fsl,imx21-uart"; reg = <0x021e8000 0x4000>; interrupts = <0 27 4>; };
            };
        };
        """

    public static let consolePath = "/soc/serial@21e8000"

    /// What a kernel for the board offers: the GIC and the i.MX UART driver.
    public static let kernelCompatibles: Set<String> = ["arm,cortex-a9-gic", "fsl,imx6q-uart", "fsl,imx21-uart", "simple-bus"]
}
