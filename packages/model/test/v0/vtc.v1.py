from mergexp import *

net = Network('vtc', routing == static, addressing == ipv4)


def rohu(name, img="ubuntu:2004"):
    return net.node(name, image == img, memory.capacity == gb(8))


hosts = [rohu(name) for name in ['jitsi', 'controller', 'client0', 'client1']]
for h in hosts:
    h.properties['group'] = 1

traffic = net.connect(hosts, capacity == mbps(100))
control = net.connect(hosts[2:], capacity == mbps(10))

traffic[hosts[0]].socket.addrs = ip4('10.0.0.100/24')
traffic[hosts[1]].socket.addrs = ip4('10.0.0.101/24')
traffic[hosts[2]].socket.addrs = ip4('10.0.0.102/24')
control[hosts[2]].socket.addrs = ip4('10.0.1.102/24')
traffic[hosts[3]].socket.addrs = ip4('10.0.0.103/24')
control[hosts[3]].socket.addrs = ip4('10.0.1.103/24')

experiment(net)
