# LANs of LANs behind a hub, nodes grouped by image version through props.
import mergexp as mx
from mergexp.net import capacity, latency, routing, static, addressing, ipv4
from mergexp.machine import memory, image, cores
from mergexp.unit import gb, mbps, ms

net = mx.Topology('lanoflan', routing == static, addressing == ipv4)
hub = net.device('hub', memory >= gb(8))


def ubuntu(name, version, min_memory=2):
    dev = net.device(name, image == "ubuntu:" + version, memory >= gb(min_memory))
    dev.props['group'] = version
    return dev


master = net.device("master", memory >= gb(40))
master.props["shape"] = "wye"
master.props["color"] = "red"

for d in range(3):
    root = net.device(f'hub-{d}', memory >= gb(8))
    net.connect([root, hub], capacity == mbps(1000), latency == ms(2))
    for l in range(2):
        nodes = [ubuntu(f"node{d}-{l}-{n}", '1804' if d else '2004', 4) for n in range(3)]
        net.connect([root] + nodes)

net.connect([master, hub])
mx.experiment(net)
