# A master and ten workers on one LAN, the shape of many published v0 models.
import mergexp as mx
from mergexp.machine import cores, memory
from mergexp.unit import gb

net = mx.Topology('workers')

WORKERS = ["n%d" % x for x in range(0, 10)]
master = net.device('master', cores >= 4, memory >= gb(4))
workers = [net.device(name) for name in WORKERS]

net.connect(workers + [master])

mx.experiment(net)
