/**
 * The `ip link add` line of a veth pair; `end` and `peer` are each end's own words (`name … [netns …] [address …]`).
 * One queue each way, asked for: left to itself the kernel makes a veth with a queue per CPU, then cuts it to one
 * (`veth_init_queues`), and that waits for an expedited RCU grace period while holding the rtnl lock. At bring-up
 * every node's boot and namespace creation waits on that lock meanwhile (500 nodes: ~1.1 s of iproute2's waiting,
 * perf sched). One queue is what a veth runs with either way.
 */
export function vethAdd(end: string, peer: string): string {
  return `link add ${end} ${ONE_QUEUE} type veth peer ${peer} ${ONE_QUEUE}`;
}

const ONE_QUEUE = "numtxqueues 1 numrxqueues 1";
