# v0 names reached through the package (mergexp.Topology, mergexp.cores), bare
# memory compared, and a LAN addressed through the link's endpoints.
import mergexp
from mergexp import *

topo = mergexp.Topology('hello mx')
a = topo.device('a', mergexp.cores > 2, memory <= gb(4), mergexp.arch == 'x86_64')
b = topo.device('b', disk >= gb(100))
lan = topo.connect([a, b], latency == ms(5))
for i, e in enumerate(lan.endpoints, 1):
    e.ip.addrs = ['10.0.0.%d/24' % i]
lan.props['role'] = 'lan'
mergexp.experiment(topo)
