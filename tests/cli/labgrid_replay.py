#!/usr/bin/python3
"""Write an image with labgrid's own USBStorageDriver in bmaptool mode.

Usage: labgrid_replay.py CONFIG TARGET [IMAGE]

CONFIG is a labgrid environment file; TARGET one of its targets, holding a
USBStorageDriver bound to one of the two storage resources below. Without IMAGE the
driver writes the image its configuration names. The driver runs "bmaptool copy"
itself, locally or on the exporter over ssh, exactly as it does in a lab.

labgrid's log, with the command it runs and that command's output, goes to standard
error. Exit status: 0 when the image was written, 3 when bmaptool failed (its output,
as the driver collected it, on standard output), 2 for a bad call, 1 for any other
failure (labgrid's exception).
"""

import logging
import subprocess
import sys

import attr
from labgrid import Environment, target_factory
from labgrid.driver.usbstoragedriver import Mode
from labgrid.resource.common import ResourceManager
from labgrid.resource.remote import NetworkUSBMassStorage
from labgrid.resource.udev import USBMassStorage, USBResource
from labgrid.util.helper import processwrapper


@target_factory.reg_resource
@attr.s(eq=False)
class LoopUSBMassStorage(USBMassStorage):
    """A USB mass storage disk played by a loop device: found by udev like the real
    resource, minus its rule that the disk sits below a USB device."""

    def __attrs_post_init__(self):
        self.match["SUBSYSTEM"] = "block"
        self.match["DEVTYPE"] = "disk"
        USBResource.__attrs_post_init__(self)


@target_factory.reg_resource
@attr.s(eq=False)
class ExporterUSBMassStorage(NetworkUSBMassStorage):
    """The disk of an exporter as the coordinator would describe it, fixed in the
    configuration instead: always available, with no coordinator to poll."""

    manager_cls = ResourceManager

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.avail = True


def main():
    if len(sys.argv) not in (3, 4):
        print("usage: labgrid_replay.py CONFIG TARGET [IMAGE]", file=sys.stderr)
        return 2
    image = sys.argv[3] if len(sys.argv) == 4 else None
    # With its log on, the driver logs the command's output instead of printing it.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    processwrapper.enable_logging()
    env = Environment(config_file=sys.argv[1])
    target = env.get_target(sys.argv[2])
    if target is None:
        print(f"labgrid_replay: no target {sys.argv[2]} in {sys.argv[1]}", file=sys.stderr)
        return 2
    driver = target.get_driver("USBStorageDriver")
    try:
        driver.write_image(image, mode=Mode.BMAPTOOL)
    except subprocess.CalledProcessError as e:
        # The driver's own runner keeps the output; other commands' failures (the
        # copy to the exporter, say) have none and are labgrid's, not bmaptool's.
        if e.output is None or "bmaptool" not in e.cmd:
            raise
        sys.stdout.write(e.output.decode("utf-8", "replace").replace("\r", "\n"))
        print(f"labgrid_replay: bmaptool exited with status {e.returncode}", file=sys.stderr)
        return 3
    finally:
        target.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
