# Every comparison operator, in either order, and ranges as two constraints.
from mergexp import *

net = Network('operators')

n = net.node(
    'n',
    proc.cores > 2,
    proc.cores <= 16,
    gb(4) < memory.capacity,          # reflected: memory.capacity > gb(4)
    memory.capacity < gb(64),
    disk.capacity >= tb(1),
    host != 'x0',
    platform == 'x86_64',
    gpu.model == 'a100',
    metal != True,
)
m = net.node('m', image == '2204')
net.connect([n, m], capacity >= mbps(10), latency <= ms(5), loss < 0.1, kind == wifi_ac)

experiment(net)
