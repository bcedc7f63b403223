import {
  AcpiPm,
  ApicBus,
  COM1_BASE,
  DEBUG_EXIT_BASE,
  DebugExit,
  FwCfg,
  Hpet,
  I440fxHostBridge,
  I8042,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  IoApic,
  LocalApic,
  MemoryMappedIoBus,
  PIC_MASTER_BASE,
  PIC_SLAVE_BASE,
  PIT_BASE,
  PORT_B_BASE,
  PciBus,
  PciConfigMechanism,
  PicPair,
  Piix3,
  Pit,
  PortIoBus,
  PC_TESTDEV_IRQ_LINES,
  PC_TESTDEV_MEMORY_BASE,
  PC_TESTDEV_MEMORY_SIZE,
  PcTestdev,
  PcTestdevPort,
  PostCodePort,
  RTC_BASE,
  ResetControl,
  Rtc,
  SYSTEM_CONTROL_PORT_A_BASE,
  SystemControlPortA,
  Uart,
  type ResetKind,
} from '@tsvirt/devices-emulated';
import { guestAddress, type CharacterBackend, type Clock, type GuestMemory, type BusDevice, type IrqLine, type ProcessorSignals } from '@tsvirt/interfaces';
import { installPcFwCfgItems } from '../firmware/fw-cfg-items.js';
import { PcLayout } from '../machine-layout.js';

export interface PcPlatformOptions {
  readonly memory: GuestMemory;
  readonly clock: Clock;
  /** RAM below and above 4 GiB, for the CMOS memory fields. */
  readonly ramBelow4G: number;
  readonly ramAbove4G: number;
  /** The console on COM1. */
  readonly serial?: CharacterBackend;
  /** Wall-clock time (ms since the epoch) the RTC starts from: the host's, or a fixed one in deterministic mode. */
  readonly startTime: number;
  /** Number of vCPUs (local APICs); APIC IDs are 0..cpus-1. */
  readonly cpus?: number;
  /** TSC rate the local APIC's TSC-deadline mode counts in. */
  readonly tscFrequencyHz: number;
  /** Guest-requested resets (0xCF9, port 0x92, the i8042 pulse). */
  readonly onReset?: (source: string) => void;
  /** ACPI S5 soft-off. */
  readonly onPowerOff?: () => void;
  /** QEMU's isa-debug-exit: the process exit status `(value << 1) | 1`. */
  readonly onDebugExit?: (status: number) => void;
  /**
   * Where isa-debug-exit answers (QEMU's `-device isa-debug-exit,iobase=,iosize=`).
   * tsvirt's pc always has one; by default at port 0xF4, one port wide.
   */
  readonly debugExit?: DebugExitPlacement;
  /** Adds QEMU's pc-testdev (`-device pc-testdev`): ports 0xE0–0xEB and 0x2000–0x2017, memory at 0xFF000000. */
  readonly pcTestdev?: boolean;
}

/** A device on the system bus with one register window and one interrupt line, as a virtio-mmio transport is. */
export interface MmioDevice {
  /** Bytes of registers (at most 0x200). */
  readonly length: number;
  readonly registers: BusDevice;
  /** Connects guest memory (for DMA) and the device's interrupt line. */
  attach(memory: GuestMemory, irq: IrqLine): void;
}

export interface DebugExitPlacement {
  readonly iobase: number;
  /** 1, 2 or 4 ports. */
  readonly iosize: 1 | 2 | 4;
}

/** ISA IRQs a pc routes PCI interrupts to: PIRQA–D as SeaBIOS programs them. */
export const PC_PIRQ_IRQS = [10, 10, 11, 11] as const;

/** Forwards processor signals to a vCPU attached after its local APIC was built. */
class ProcessorSignalPort implements ProcessorSignals {
  target: ProcessorSignals | undefined;
  nmi(): void {
    this.target?.nmi();
  }
  init(): void {
    this.target?.init();
  }
  startup(vector: number): void {
    this.target?.startup(vector);
  }
  wake(): void {
    this.target?.wake();
  }
}

/** The boot CPU's IGNNE# input (x86-core's `Cpu.ignoreNumericError`). */
export interface NumericErrorInput {
  ignoreNumericError(asserted: boolean): void;
}

/**
 * The PC's legacy x87 error path (CR0.NE = 0, as DOS-era code runs): the
 * boot CPU's FERR# output raises ISA IRQ 13; a write to port 0xF0 clears the
 * interrupt and asserts IGNNE# so the frozen x87 instruction can go on, until
 * FERR# goes inactive again.
 */
class NumericErrorRouting implements IrqLine, BusDevice {
  processor: NumericErrorInput | undefined;
  constructor(private readonly irq13: IrqLine) {}
  setLevel(asserted: boolean): void {
    if (asserted) this.irq13.setLevel(true);
    else this.processor?.ignoreNumericError(false);
  }
  pulse(): void {
    this.irq13.pulse();
  }
  read(): number {
    return 0xff;
  }
  write(): void {
    this.irq13.setLevel(false);
    this.processor?.ignoreNumericError(true);
  }
}

/**
 * QEMU's `pc` machine without its CPU: i440FX + PIIX3, the ISA devices, the
 * local APICs and IOAPIC, HPET, ACPI PM and fw_cfg, wired as on a PC. The
 * vCPUs attach through {@link PcPlatform.attachProcessor} and take their
 * interrupts from {@link PcPlatform.localApics}.
 *
 * ISA IRQ n reaches PIC input n and IOAPIC pin n (IRQ 0 goes to pin 2, as
 * the MADT says); the PIC's INTR reaches the boot CPU's LINT0 (ExtINT).
 */
export class PcPlatform {
  /** Guest RAM, as devices reach it by DMA. */
  readonly memory: GuestMemory;
  readonly io = new PortIoBus();
  readonly mmio = new MemoryMappedIoBus();
  readonly pic: PicPair;
  readonly pit: Pit;
  readonly rtc: Rtc;
  readonly serial: Uart;
  readonly keyboardController: I8042;
  readonly apicBus = new ApicBus();
  readonly localApics: LocalApic[];
  readonly ioapic: IoApic;
  readonly hpet: Hpet;
  readonly acpiPm: AcpiPm;
  readonly fwCfg: FwCfg;
  readonly pciBus: PciBus;
  readonly hostBridge: I440fxHostBridge;
  readonly piix3: Piix3;
  readonly postCodes: PostCodePort;
  private readonly signalPorts: ProcessorSignalPort[];
  private readonly isaIrqs: IrqLine[];
  private readonly numericError: NumericErrorRouting;

  constructor(options: PcPlatformOptions) {
    const { clock, memory } = options;
    this.memory = memory;
    const onReset = options.onReset ?? (() => {});
    const cpus = options.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 255) throw new RangeError(`vCPU count must be 1-255, got ${cpus}`);

    this.ioapic = new IoApic({ bus: this.apicBus, id: PcLayout.ioapicId });
    this.signalPorts = Array.from({ length: cpus }, () => new ProcessorSignalPort());
    this.pic = new PicPair({ onInterruptChanged: (asserted) => this.localApics[0]?.setLint0(asserted) });
    this.localApics = this.signalPorts.map(
      (signals, id) => new LocalApic({ id, bootstrap: id === 0, clock, bus: this.apicBus, signals, pic: id === 0 ? this.pic : undefined, tscFrequencyHz: options.tscFrequencyHz }),
    );
    for (const apic of this.localApics) this.apicBus.attach(apic);

    this.isaIrqs = Array.from({ length: 16 }, (_, irq) => {
      const ioapicInput = this.ioapic.inputs[irq === 0 ? 2 : irq]!;
      return {
        setLevel: (asserted: boolean) => {
          this.pic.setIrq(irq, asserted);
          ioapicInput.setLevel(asserted);
        },
        pulse: () => {
          this.pic.setIrq(irq, true);
          this.pic.setIrq(irq, false);
          ioapicInput.pulse();
        },
      };
    });
    const isa = (irq: number) => this.isaIrqs[irq]!;

    this.pit = new Pit({ clock, irq: isa(0) });
    this.rtc = new Rtc({ clock, irq: isa(8), startTime: options.startTime });
    this.rtc.configureMemory({ below4G: options.ramBelow4G, above4G: options.ramAbove4G });
    this.rtc.setCpuCount(cpus);
    this.serial = new Uart({ clock, irq: isa(4), backend: options.serial });
    this.keyboardController = new I8042({ keyboardIrq: isa(1), mouseIrq: isa(12), onReset: () => onReset('i8042') });
    this.hpet = new Hpet({
      clock,
      routes: this.ioapic.inputs,
      legacyIrq0: this.ioapic.inputs[2],
      legacyIrq8: this.ioapic.inputs[8],
    });
    this.acpiPm = new AcpiPm({ clock, sci: isa(9), onPowerOff: options.onPowerOff });
    this.fwCfg = new FwCfg({ dma: memory });
    installPcFwCfgItems(this.fwCfg, {
      cpus,
      ramBytes: options.ramBelow4G + options.ramAbove4G,
      hpet: { blockId: this.hpet.read(0, 4), address: PcLayout.hpetBase },
    });
    this.postCodes = new PostCodePort();

    this.pciBus = new PciBus({ pio: this.io, mmio: this.mmio, dma: memory, msi: this.apicBus });
    this.hostBridge = new I440fxHostBridge();
    this.piix3 = new Piix3({ isaIrqs: this.isaIrqs, onElcrChange: (mask) => this.pic.setTriggerModes(mask) });
    this.pciBus.plug(this.hostBridge, 0, 0);
    this.pciBus.plug(this.piix3, 1, 0, { multifunction: true });
    this.pciBus.setInterruptRouter(this.piix3);
    const resetControl = new ResetControl({ onReset: (kind: ResetKind) => onReset(`0xcf9 ${kind}`) });
    const pciConfig = new PciConfigMechanism(this.pciBus, { resetControl });

    const io = this.io;
    io.register(PIC_MASTER_BASE, 2, this.pic.master, 'pic-master');
    io.register(PIC_SLAVE_BASE, 2, this.pic.slave, 'pic-slave');
    io.register(PIT_BASE, 4, this.pit, 'pit');
    io.register(PORT_B_BASE, 1, this.pit.portB, 'port-b');
    io.register(RTC_BASE, 2, this.rtc, 'rtc');
    io.register(COM1_BASE, 8, this.serial, 'com1');
    io.register(I8042_DATA_PORT, 1, this.keyboardController.data, 'i8042-data');
    io.register(I8042_COMMAND_PORT, 1, this.keyboardController.command, 'i8042-command');
    io.register(SYSTEM_CONTROL_PORT_A_BASE, 1, new SystemControlPortA({ onReset: () => onReset('port 0x92') }), 'port-92');
    io.register(0x80, 1, this.postCodes, 'post');
    this.numericError = new NumericErrorRouting(isa(13));
    io.register(0xf0, 1, this.numericError, 'coprocessor-error');
    const debugExit = options.debugExit ?? { iobase: DEBUG_EXIT_BASE, iosize: 1 };
    io.register(debugExit.iobase, debugExit.iosize, new DebugExit({ onExit: options.onDebugExit }), 'isa-debug-exit');
    io.register(0xcf8, 4, pciConfig.addressPort, 'pci-config-address');
    io.register(0xcfc, 4, pciConfig.dataPort, 'pci-config-data');
    io.register(0x4d0, 2, this.piix3.elcrPorts, 'elcr');
    io.register(0x600, 0x40, this.acpiPm.pmBlock, 'acpi-pm');
    io.register(0xafe0, 4, this.acpiPm.gpeBlock, 'acpi-gpe0');
    io.register(0xb2, 2, this.acpiPm.smiCommand, 'apm');
    io.register(0x510, 2, this.fwCfg.ioPorts, 'fw-cfg');
    io.register(0x514, 8, this.fwCfg.dmaPort, 'fw-cfg-dma');

    if (options.pcTestdev === true) this.plugPcTestdev();

    this.mmio.register(guestAddress(PcLayout.ioapicBase), 0x1000, this.ioapic.mmio, 'ioapic');
    this.mmio.register(guestAddress(PcLayout.hpetBase), 0x400, this.hpet, 'hpet');
    // One vCPU for now: its APIC answers at the architectural address (per-vCPU dispatch comes with SMP).
    this.mmio.register(guestAddress(PcLayout.localApicBase), 0x1000, this.localApics[0]!.mmio, 'local-apic');

    // Firmware's job, done here since tsvirt boots kernels directly: route PIRQs and mark them level-triggered.
    for (let pirq = 0; pirq < 4; pirq++) this.pciBus.writeConfig(1, 0, 0x60 + pirq, 1, PC_PIRQ_IRQS[pirq]!);
    const levelMask = (1 << 9) | PC_PIRQ_IRQS.reduce((mask, irq) => mask | (1 << irq), 0);
    this.piix3.elcrPorts.write(0, 1, levelMask & 0xff);
    this.piix3.elcrPorts.write(1, 1, levelMask >> 8);
    // SeaBIOS leaves the i8042 translating to set 1 with keyboard interrupts on and the mouse port off
    // (CTR 0x61); Linux keeps translation only if it finds XLATE set ("AT Translated Set 2 keyboard").
    io.write(I8042_COMMAND_PORT, 1, 0x60);
    io.write(I8042_DATA_PORT, 1, 0x61);
  }

  /** pc-testdev's lines 0–15 are the ISA IRQs, 16–23 the IOAPIC's PCI pins, as QEMU's GSIs are. */
  private plugPcTestdev(): void {
    const irqLines = Array.from({ length: PC_TESTDEV_IRQ_LINES }, (_, line) => (line < 16 ? this.isaIrqs[line] : this.ioapic.inputs[line]));
    const testdev = new PcTestdev({ irqLines });
    this.io.register(PcTestdevPort.data, 4, testdev.dataPort, 'pc-testdev-ioport');
    this.io.register(PcTestdevPort.flushPage, 4, testdev.flushPagePort, 'pc-testdev-flush-page');
    this.io.register(PcTestdevPort.dataByte, 4, testdev.dataPort, 'pc-testdev-ioport-byte');
    this.io.register(PcTestdevPort.irqLines, PC_TESTDEV_IRQ_LINES, testdev.irqPorts, 'pc-testdev-irq-line');
    this.mmio.register(guestAddress(PC_TESTDEV_MEMORY_BASE), PC_TESTDEV_MEMORY_SIZE, testdev.mmio, 'pc-testdev-iomem');
  }

  /** The ISA interrupt line `irq` (0–15), fanned out to the PIC and the IOAPIC. */
  isaIrq(irq: number): IrqLine {
    const line = this.isaIrqs[irq];
    if (line === undefined) throw new RangeError(`ISA IRQ ${irq} does not exist`);
    return line;
  }

  /**
   * Places a system-bus device (a virtio-mmio transport) as the `index`th of
   * its kind: registers at 0xFEB00000 + 0x200·index, its level-triggered line
   * on IOAPIC input 16 + index. Returns where, for the DSDT.
   */
  plugMmioDevice(device: MmioDevice, index: number): { readonly base: number; readonly length: number; readonly gsi: number } {
    const gsi = PcLayout.virtioMmioFirstGsi + index;
    const line = this.ioapic.inputs[gsi];
    if (line === undefined || device.length > PcLayout.virtioMmioStride) throw new RangeError(`MMIO device ${index} does not fit: the IOAPIC has inputs up to ${this.ioapic.inputs.length - 1}, and a window is ${PcLayout.virtioMmioStride} bytes`);
    const base = PcLayout.virtioMmioBase + PcLayout.virtioMmioStride * index;
    device.attach(this.memory, line);
    this.mmio.register(guestAddress(base), device.length, device.registers, `virtio-mmio-${index}`);
    return { base, length: device.length, gsi };
  }

  /**
   * Connects vCPU `index` so its local APIC can send it NMI, INIT, SIPI and
   * wake-ups; the boot CPU (0) also gets IGNNE# from port 0xF0.
   */
  attachProcessor(index: number, signals: ProcessorSignals & Partial<NumericErrorInput>): void {
    const port = this.signalPorts[index];
    if (port === undefined) throw new RangeError(`there is no vCPU ${index}`);
    port.target = signals;
    if (index === 0 && signals.ignoreNumericError !== undefined) this.numericError.processor = signals as NumericErrorInput;
  }

  /** The line the boot CPU drives as FERR# (x86-core's `CpuOptions.floatingPointError`). */
  get floatingPointError(): IrqLine {
    return this.numericError;
  }
}
