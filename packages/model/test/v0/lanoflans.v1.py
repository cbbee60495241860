from mergexp import *

net = Network('lanoflan', routing == static, addressing == ipv4)
hub = net.node('hub', memory.capacity >= gb(8))


def ubuntu(name, version, min_memory=2):
    dev = net.node(name, image == "ubuntu:" + version, memory.capacity >= gb(min_memory))
    dev.properties['group'] = version
    return dev


master = net.node("master", memory.capacity >= gb(40))
master.properties["shape"] = "wye"
master.properties["color"] = "red"

for d in range(3):
    root = net.node(f'hub-{d}', memory.capacity >= gb(8))
    net.connect([root, hub], capacity == mbps(1000), latency == ms(2))
    for l in range(2):
        nodes = [ubuntu(f"node{d}-{l}-{n}", '1804' if d else '2004', 4) for n in range(3)]
        net.connect([root] + nodes)

net.connect([master, hub])
experiment(net)
