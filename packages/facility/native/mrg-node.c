/*
 * mrg-node: start node containers. One process starts many containers (a fork
 * per container, not a process chain per container), reading one line per
 * container on stdin:
 *
 *   NETNS_PATH HOSTNAME LOWER UPPER WORK MERGED CGROUP_PROCS[,..]|- [BINDS]
 *
 * (all of stdin is read first; see main for the optional ROOT argument).
 * BINDS, optional: `SRC:DST[,SRC:DST...]`, host directories bind-mounted at DST
 * in the container (the portal's /home/<user> and /proj/<project>); see binds.
 *
 * and printing `ok HOSTNAME PID` (PID = the container's init, host view) or
 * `err HOSTNAME message`. The container: the given network namespace, new UTS
 * (hostname), mount, PID and IPC namespaces, root = overlayfs(LOWER, UPPER)
 * mounted inside its own mount namespace (so it vanishes with the container),
 * /proc, /sys, a minimal /dev with devpts. Its init (this program, PID 1) brings
 * lo and eth0 up, runs the merge boot itself (mrg-boot.h: DHCP, foundry, configuration), then reaps
 * orphans, and on SIGTERM stops everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

/* One socket for the init's interface ioctls (link up, index by name), opened once: every node boots at once,
   and a socket each time was a third of a boot's sockets. Closed when the boot ends (boot_sockets_close). */
static int ctl_fd = -1;
static int ctl_sock(void) {
  if (ctl_fd < 0) ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return ctl_fd;
}

/* Bring an interface up here rather than with `ip` in the boot: every node does it, and a process costs milliseconds. */
static void link_up(const char *name) {
  int s = ctl_sock();
  if (s < 0) return;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
}
static void on_term(int sig) { (void)sig; stopping = 1; }

#include "mrg-boot.h"

static int run_init(void) {
  /* Drop everything inherited from the starter (its stdout pipe above all). */
  int nul = open("/dev/null", O_RDWR);
  if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); }
  if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0)
    for (int fd = 3; fd < 65536; fd++) close(fd);
  /* Set for the starters (container.ts: no rseq); what the node runs gets glibc's defaults. */
  unsetenv("GLIBC_TUNABLES");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  link_up("lo");
  /* The infranet is IPv4 (DHCP, DNS, foundry) and one broadcast domain for every node of the materialization:
     each node's IPv6 link-local chatter (DAD, MLD, router solicitation) would reach every other node, n² frames. */
  write_file("/proc/sys/net/ipv6/conf/eth0/disable_ipv6", "1\n");
  link_up("eth0");
  /* The boot runs here, not in a child: the init has nothing else to do until it is done (orphans wait to be
     reaped, a SIGTERM ends the boot at its next wait). Its messages go to the node's boot log. */
  int log = open("/var/log/boot.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log >= 0) { dup2(log, 1); dup2(log, 2); close(log); }
  if (setjmp(boot_end) == 0) native_boot();
  boot_sockets_close();
  /* Booted at a lower priority than what wires the other nodes (container.ts): a node runs at the normal one. */
  setpriority(PRIO_PROCESS, 0, 0);
  for (;;) {
    if (stopping) {
      kill(-1, SIGTERM);
      for (int i = 0; i < 20; i++) {
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        if (kill(-1, 0) < 0 && errno == ESRCH) break;
        usleep(100000);
      }
      kill(-1, SIGKILL);
      _exit(0);
    }
    pid_t p = waitpid(-1, NULL, 0);
    if (p < 0 && errno == ECHILD) pause();
  }
}

static int must(int rc, const char *what, int fd) {
  if (rc < 0) {
    dprintf(fd, "%s: %s", what, strerror(errno));
    _exit(1);
  }
  return rc;
}

#define MAXBIND 16
struct bind {
  int fd; /* a detached copy of SRC's mount tree (open_tree), moved into the container at DST */
  const char *dst;
};

/* mkdir -p of an absolute path (the bind's mount point in the new root). */
static void mkdirs(char *path) {
  for (char *s = path + 1; *s; s++)
    if (*s == '/') { *s = 0; mkdir(path, 0755); *s = '/'; }
  mkdir(path, 0755);
}

/* In the container's init, before exec: build the root and pivot into it. */
static void make_root(const char *host, const char *lower, const char *upper, const char *work,
                      const char *merged, const struct bind *binds, int nbind, int from_template, int errfd) {
  char opts[4096], p[4096];
  /* A copy of the starter's template namespace is private already (main): a mount call fewer, each one holding
     the kernel's lock on every mount namespace while every container is being made. */
  if (!from_template) must(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private", errfd);
  snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
  must(mount("overlay", merged, "overlay", 0, opts), "mount overlay", errfd);
  snprintf(p, sizeof p, "%s/proc", merged);
  mkdir(p, 0555);
  must(mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount proc", errfd);
  snprintf(p, sizeof p, "%s/sys", merged);
  mkdir(p, 0555);
  mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  snprintf(p, sizeof p, "%s/dev", merged);
  mkdir(p, 0755);
  must(mount("tmpfs", p, "tmpfs", MS_NOSUID, "mode=755,size=1m"), "mount /dev", errfd);
  static const struct { const char *n; int maj, min; } devs[] = {
      {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
    snprintf(p, sizeof p, "%s/dev/%s", merged, devs[i].n);
    must(mknod(p, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)), "mknod", errfd);
  }
  snprintf(p, sizeof p, "%s/dev/pts", merged);
  mkdir(p, 0755);
  if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620") == 0) {
    snprintf(p, sizeof p, "%s/dev/ptmx", merged);
    symlink("pts/ptmx", p);
  }
  snprintf(p, sizeof p, "%s/dev/shm", merged);
  mkdir(p, 01777);
  /* The shared directories: copies of host mounts taken before the starter left the host's view (main),
     attached here; slaves, so the node's own mounts under them stay the node's. */
  for (int i = 0; i < nbind; i++) {
    snprintf(p, sizeof p, "%s%s", merged, binds[i].dst);
    mkdirs(p);
    must(move_mount(binds[i].fd, "", AT_FDCWD, p, MOVE_MOUNT_F_EMPTY_PATH), "bind mount", errfd);
    mount(NULL, p, NULL, MS_REC | MS_SLAVE, NULL);
    close(binds[i].fd);
  }
  must(chdir(merged), "chdir root", errfd);
  must((int)syscall(SYS_pivot_root, ".", "."), "pivot_root", errfd);
  must(umount2(".", MNT_DETACH), "detach old root", errfd);
  must(chdir("/"), "chdir /", errfd);
  must(sethostname(host, strlen(host)), "sethostname", errfd);
}

#define MAXCG 4
struct job {
  char *f[8];
  int netfd;
  struct bind binds[MAXBIND];
  int nbind;
  int cg[MAXCG];
  pid_t mid; /* the container's init */
  int errfd;
  char err[128];
};

static int cgfd_of(struct job *j, int k) { return j->cg[k]; }

static void open_cgroups(struct job *j) {
  for (int k = 0; k < MAXCG; k++) j->cg[k] = -1;
  if (strcmp(j->f[6], "-") == 0) return;
  char *buf = strdup(j->f[6]);
  int k = 0;
  for (char *s = strtok(buf, ","); s && k < MAXCG; s = strtok(NULL, ",")) j->cg[k++] = open(s, O_WRONLY | O_CLOEXEC);
  free(buf);
}

/*
 * BINDS (`SRC:DST,...`): each SRC's mount tree copied now, while the host's paths are visible
 * (the starter then pivots into the data directory). A copy is attached once, so one per container.
 */
static int open_binds(struct job *j) {
  j->nbind = 0;
  if (!j->f[7] || strcmp(j->f[7], "-") == 0) return 0;
  for (char *s = strtok(j->f[7], ","); s; s = strtok(NULL, ",")) {
    char *colon = strchr(s, ':');
    if (!colon || colon[1] != '/' || j->nbind == MAXBIND) {
      snprintf(j->err, sizeof j->err, "bind %s: expected SRC:/DST (at most %d)", s, MAXBIND);
      return -1;
    }
    *colon = 0;
    int fd = open_tree(AT_FDCWD, s, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) {
      snprintf(j->err, sizeof j->err, "bind %s: %s", s, strerror(errno));
      return -1;
    }
    j->binds[j->nbind].fd = fd;
    j->binds[j->nbind++].dst = colon + 1;
  }
  return 0;
}

static void close_binds(struct job *j) {
  for (int i = 0; i < j->nbind; i++) close(j->binds[i].fd);
  j->nbind = 0;
}

static void close_cgroups(struct job *j) {
  for (int k = 0; k < MAXCG; k++) if (j->cg[k] >= 0) close(j->cg[k]);
}

/*
 * Start one container: join its network namespace here (setns is per thread,
 * and this process only starts containers) and clone its init straight into
 * new UTS, mount, PID and IPC namespaces: one process a container, not an
 * intermediate that unshares and forks (a fork costs milliseconds here). The
 * init builds its root and says what failed on errfd; EOF with nothing said
 * is success (read by finish()).
 */
static void launch(struct job *j, const char *strip) {
  int errp[2], gop[2];
  j->mid = -1;
  j->errfd = -1;
  /* Paths are given as the host sees them; inside the template namespace the data directory is "/". */
  size_t sl = strip ? strlen(strip) : 0;
  for (int k = 2; k <= 5; k++)
    if (sl && strncmp(j->f[k], strip, sl) == 0) j->f[k] += sl;
  if (j->err[0]) return; /* a bind that could not be opened (open_binds) */
  if (j->netfd < 0) { snprintf(j->err, sizeof j->err, "open netns: %s", strerror(ENOENT)); return; }
  if (setns(j->netfd, CLONE_NEWNET) < 0) { snprintf(j->err, sizeof j->err, "setns net: %s", strerror(errno)); return; }
  if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0) { snprintf(j->err, sizeof j->err, "pipe: %s", strerror(errno)); return; }
  pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | SIGCHLD, NULL, NULL, NULL, 0);
  if (init == 0) {
    close(errp[0]);
    close(gop[1]);
    char go;
    /* Wait until the starter has put us in our cgroups: nothing of the node runs outside its limits. */
    if (read(gop[0], &go, 1) != 1) _exit(1);
    close(gop[0]);
    make_root(j->f[1], j->f[2], j->f[3], j->f[4], j->f[5], j->binds, j->nbind, strip != NULL, errp[1]);
    close(errp[1]);
    run_init();
  }
  close(errp[1]);
  close(gop[0]);
  close_binds(j);
  if (init < 0) {
    snprintf(j->err, sizeof j->err, "clone: %s", strerror(errno));
    close(errp[0]);
    close(gop[1]);
    return;
  }
  for (int k = 0; k < MAXCG && cgfd_of(j, k) >= 0; k++) dprintf(cgfd_of(j, k), "%d\n", init);
  if (write(gop[1], "g", 1) != 1) {}
  close(gop[1]);
  j->mid = init;
  j->errfd = errp[0];
}

static void finish(struct job *j) {
  const char *host = j->f[1];
  if (j->mid < 0) { printf("err %s %s\n", host, j->err[0] ? j->err : "failed"); fflush(stdout); return; }
  char msg[512];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof msg - 1 && (r = read(j->errfd, msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)r;
  msg[len] = 0;
  close(j->errfd);
  if (len == 0) printf("ok %s %d\n", host, j->mid);
  else {
    waitpid(j->mid, NULL, 0);
    printf("err %s %s\n", host, msg);
  }
  fflush(stdout);
}

/*
 * Usage: mrg-node [ROOT] < lines. With ROOT (the data directory holding images
 * and node layers), the starter first moves itself into a mount namespace
 * whose root is ROOT alone, so each container's new mount namespace copies a
 * handful of mounts instead of the whole host's (hundreds of netns mounts).
 */
int main(int argc, char **argv) {
  const char *root = argc > 1 ? argv[1] : NULL;
  signal(SIGCHLD, SIG_DFL);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  /* Read every line and open every namespace and cgroup file while the host's paths are visible. */
  size_t n = 0, cap = 64;
  struct job *jobs = calloc(cap, sizeof *jobs);
  char *line = NULL;
  size_t lcap = 0;
  while (getline(&line, &lcap, stdin) > 0) {
    if (line[0] == '\n' || line[0] == '#') continue;
    if (n == cap) jobs = realloc(jobs, (cap *= 2) * sizeof *jobs);
    struct job *j = &jobs[n];
    memset(j, 0, sizeof *j);
    char *copy = strdup(line);
    int k = 0;
    for (char *s = strtok(copy, " \t\n"); s && k < 8; s = strtok(NULL, " \t\n")) j->f[k++] = s;
    if (k < 7) { printf("err %s expected 7 or 8 fields\n", k > 1 ? j->f[1] : "?"); fflush(stdout); continue; }
    j->netfd = open(j->f[0], O_RDONLY | O_CLOEXEC);
    open_cgroups(j);
    open_binds(j);
    n++;
  }
  free(line);
  if (root && n > 0) {
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0 || chdir(root) < 0 ||
        syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
      fprintf(stderr, "mrg-node: cannot enter %s: %s\n", root, strerror(errno));
      return 1;
    }
  }
  /* A few starters, each with containers in flight: on a busy host the serial part (a clone, cgroup
     writes) is what waits for a core, and their kernel work (namespaces, mounts) spreads over the cores.
     Each result is one line written whole, so the starters' lines never mix. */
  enum { STARTERS = 4, INFLIGHT = 8 };
  size_t starters = n < 32 ? 1 : STARTERS;
  for (size_t w = 0; w < starters; w++) {
    pid_t p = starters == 1 ? 0 : fork();
    if (p < 0) { perror("mrg-node: fork starter"); return 1; }
    if (p > 0) continue;
    size_t next = w, done = w;
    while (done < n) {
      while (next < n && next < done + INFLIGHT * starters) {
        launch(&jobs[next], root);
        next += starters;
      }
      finish(&jobs[done]);
      if (jobs[done].netfd >= 0) close(jobs[done].netfd);
      close_cgroups(&jobs[done]);
      close_binds(&jobs[done]);
      done += starters;
    }
    if (starters == 1) return 0;
    _exit(0);
  }
  int failed = 0, st;
  while (wait(&st) > 0)
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed = 1;
  return failed;
  return 0;
}
