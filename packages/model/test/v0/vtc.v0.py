# Video conferencing: a traffic LAN and a control LAN, addressed through endpoints.
import mergexp as mx
from mergexp.net import capacity, routing, static, addressing, ipv4
from mergexp.unit import mbps, gb
from mergexp.machine import memory, image

net = mx.Topology('vtc', routing == static, addressing == ipv4)


def rohu(name, img="ubuntu:2004"):
    return net.device(name, image == img, memory == gb(8))


hosts = [rohu(name) for name in ['jitsi', 'controller', 'client0', 'client1']]
for h in hosts:
    h.props['group'] = 1

net.connect(hosts, capacity == mbps(100))
net.connect(hosts[2:], capacity == mbps(10))

hosts[0].endpoints[0].ip.addrs = ['10.0.0.100/24']
hosts[1].endpoints[0].ip.addrs = ['10.0.0.101/24']
hosts[2].endpoints[0].ip.addrs = ['10.0.0.102/24']
hosts[2].endpoints[1].ip.addrs = ['10.0.1.102/24']
hosts[3].endpoints[0].ip.addrs = ['10.0.0.103/24']
hosts[3].endpoints[1].ip.addrs = ['10.0.1.103/24']

mx.experiment(net)
