from mergexp import *

net = Network('workers')

WORKERS = ["n%d" % x for x in range(0, 10)]
master = net.node('master', proc.cores >= 4, memory.capacity >= gb(4))
workers = [net.node(name) for name in WORKERS]

net.connect(workers + [master])

experiment(net)
