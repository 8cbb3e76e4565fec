#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/process.hpp>

#include <array>
#include <utility>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdexcept>
#include <string_view>
#include <sys/resource.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

namespace condaguard::process {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes moved per read or write.
constexpr std::size_t kChunk = 64 * 1024;
// While only the child's exit is awaited (its outputs are closed), how often
// to look.
constexpr std::chrono::milliseconds kReapInterval{5};

[[noreturn]] void fail_rc(int rc, const std::string& what) { throw std::system_error(rc, std::generic_category(), what); }

// Moves fd above 0-2, so that dup2 onto 0-2 in the child always makes a new
// descriptor (one without FD_CLOEXEC) even when this process has closed its own.
void lift_above_stdio(fs::Fd& fd) {
    if (fd.get() > 2) return;
    const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0) throw fs::errno_error("fcntl(F_DUPFD_CLOEXEC)");
    fd = fs::Fd(moved);
}

struct Pipe {
    fs::Fd read;
    fs::Fd write;
};

Pipe make_pipe() {
    std::array<int, 2> p{};
    if (::pipe2(p.data(), O_CLOEXEC) != 0) throw fs::errno_error("pipe2");
    Pipe out{fs::Fd(p[0]), fs::Fd(p[1])};
    lift_above_stdio(out.read);
    lift_above_stdio(out.write);
    return out;
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) throw fs::errno_error("fcntl(O_NONBLOCK)");
}

class FileActions {
public:
    FileActions() {
        if (int rc = ::posix_spawn_file_actions_init(&fa_); rc != 0) fail_rc(rc, "posix_spawn_file_actions_init");
    }
    ~FileActions() { ::posix_spawn_file_actions_destroy(&fa_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    void dup2(int from, int to) {
        if (int rc = ::posix_spawn_file_actions_adddup2(&fa_, from, to); rc != 0)
            fail_rc(rc, "posix_spawn_file_actions_adddup2");
    }
    // Closes every descriptor from `low` up in the child, O_CLOEXEC or not.
    void close_from(int low) {
        if (int rc = ::posix_spawn_file_actions_addclosefrom_np(&fa_, low); rc != 0)
            fail_rc(rc, "posix_spawn_file_actions_addclosefrom_np");
    }
    const posix_spawn_file_actions_t* get() const noexcept { return &fa_; }

private:
    posix_spawn_file_actions_t fa_{};
};

// The child starts with no signal blocked, every signal at its default
// action (a parent that ignores SIGPIPE does not pass that on), and in a new
// process group of its own, so that the timeout can kill what it started too.
class SpawnAttr {
public:
    SpawnAttr() {
        if (int rc = ::posix_spawnattr_init(&attr_); rc != 0) fail_rc(rc, "posix_spawnattr_init");
        sigset_t none;
        sigset_t all;
        ::sigemptyset(&none);
        ::sigfillset(&all);
        ::sigdelset(&all, SIGKILL);
        ::sigdelset(&all, SIGSTOP);
        const short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP;
        int rc = ::posix_spawnattr_setsigmask(&attr_, &none);
        if (rc == 0) rc = ::posix_spawnattr_setsigdefault(&attr_, &all);
        if (rc == 0) rc = ::posix_spawnattr_setpgroup(&attr_, 0);
        if (rc == 0) rc = ::posix_spawnattr_setflags(&attr_, flags);
        if (rc != 0) {
            ::posix_spawnattr_destroy(&attr_);
            fail_rc(rc, "posix_spawnattr");
        }
    }
    // An attached child: our signal mask and process group; the signals in
    // `defaults` at their default action.
    explicit SpawnAttr(const sigset_t& defaults) {
        if (int rc = ::posix_spawnattr_init(&attr_); rc != 0) fail_rc(rc, "posix_spawnattr_init");
        int rc = ::posix_spawnattr_setsigdefault(&attr_, &defaults);
        if (rc == 0) rc = ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGDEF);
        if (rc != 0) {
            ::posix_spawnattr_destroy(&attr_);
            fail_rc(rc, "posix_spawnattr");
        }
    }
    ~SpawnAttr() { ::posix_spawnattr_destroy(&attr_); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    const posix_spawnattr_t* get() const noexcept { return &attr_; }

private:
    posix_spawnattr_t attr_{};
};

// Writing into a pipe whose reader has gone raises SIGPIPE, which would end
// this process. While this lives SIGPIPE is blocked in the calling thread, so
// such a write fails with EPIPE instead; a SIGPIPE raised meanwhile is
// consumed before the old mask comes back.
class SigpipeBlocked {
public:
    SigpipeBlocked() {
        ::sigemptyset(&pipe_);
        ::sigaddset(&pipe_, SIGPIPE);
        if (int rc = ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_); rc != 0) fail_rc(rc, "pthread_sigmask");
        sigset_t pending;
        ::sigpending(&pending);
        was_pending_ = ::sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeBlocked() {
        sigset_t pending;
        if (!was_pending_ && ::sigpending(&pending) == 0 && ::sigismember(&pending, SIGPIPE) == 1) {
            const timespec now{};
            while (::sigtimedwait(&pipe_, nullptr, &now) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlocked(const SigpipeBlocked&) = delete;
    SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

private:
    sigset_t pipe_{};
    sigset_t old_{};
    bool was_pending_ = false;
};

// Whether a child leads a process group of its own (run) or stays in ours
// (run_attached).
enum class Group { Own, Ours };

// A started child, killed (with its process group when it has its own) and
// reaped if it has not been reaped when this goes out of scope, e.g. on an
// exception.
class Child {
public:
    explicit Child(pid_t pid, Group group = Group::Own) noexcept : pid_(pid), group_(group) {}
    ~Child() {
        if (reaped_) return;
        kill_group();
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const noexcept { return pid_; }
    bool reaped() const noexcept { return reaped_; }
    // Before the child is reaped its pid names its process group for sure.
    void kill_group() const noexcept {
        if (!reaped_) ::kill(group_ == Group::Own ? -pid_ : pid_, SIGKILL);
    }
    // wait4 with `flags`; true once the child has been reaped.
    bool reap(int flags, int& status, rusage& ru) {
        for (;;) {
            const pid_t r = ::wait4(pid_, &status, flags, &ru);
            if (r == pid_) return reaped_ = true;
            if (r == 0) return false;
            if (errno != EINTR) throw fs::errno_error("wait4");
        }
    }

private:
    pid_t pid_;
    Group group_;
    bool reaped_ = false;
};

int millis_until(Clock::time_point deadline) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    return left > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left);
}

// One read from a non-blocking pipe into `into` (up to `cap` kept). Closes
// `fd` at end of file.
void drain_once(fs::Fd& fd, Captured& into, std::size_t cap, std::array<char, kChunk>& buf) {
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n > 0) {
            const auto got = static_cast<std::size_t>(n);
            const std::size_t room = into.data.size() < cap ? cap - into.data.size() : 0;
            const std::size_t keep = got < room ? got : room;
            into.data.append(buf.data(), keep);
            into.dropped += got - keep;
            return;
        }
        if (n == 0) {
            fd.reset();
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        throw fs::errno_error("read from child");
    }
}

// One write of the rest of `data` into a non-blocking pipe. Closes `fd` once
// everything is written, or when the child has closed its end.
void feed_once(fs::Fd& fd, std::string_view data, std::size_t& offset) {
    while (offset < data.size()) {
        const std::size_t len = data.size() - offset < kChunk ? data.size() - offset : kChunk;
        const ssize_t n = ::write(fd.get(), data.data() + offset, len);
        if (n >= 0) {
            offset += static_cast<std::size_t>(n);
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EPIPE) {
            fd.reset();
            return;
        }
        throw fs::errno_error("write to child");
    }
    if (offset == data.size()) fd.reset();
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

// How the child ended, from waitpid's status, into a result with ending,
// exit_code and signal.
template <class Result>
void take_wait_status(int status, Result& result) {
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
        result.ending = Ending::Exited;
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
        result.ending = Ending::Signaled;
    }
}

}  // namespace

Outcome run(const Command& cmd) {
    if (cmd.argv.empty()) throw std::invalid_argument("process::run: empty argv");
    const auto start = Clock::now();
    const auto deadline = start + cmd.timeout;

    Pipe in = make_pipe();
    Pipe out = make_pipe();
    Pipe err = make_pipe();

    FileActions actions;
    actions.dup2(in.read.get(), 0);
    actions.dup2(out.write.get(), 1);
    actions.dup2(err.write.get(), 2);
    actions.close_from(3);
    const SpawnAttr attr;
    // Everything the child needs exists before it is started: nothing is
    // allocated or looked up between fork and exec.
    std::vector<char*> argv = c_strings(cmd.argv);
    std::vector<char*> envp = c_strings(cmd.env);

    const SigpipeBlocked no_sigpipe;
    pid_t pid = -1;
    if (int rc = ::posix_spawn(&pid, argv[0], actions.get(), attr.get(), argv.data(), envp.data()); rc != 0)
        fail_rc(rc, "cannot run " + cmd.argv[0]);
    Child child(pid);
    in.read.reset();
    out.write.reset();
    err.write.reset();
    set_nonblocking(in.write.get());
    set_nonblocking(out.read.get());
    set_nonblocking(err.read.get());

    Outcome result;
    std::size_t offset = 0;
    if (cmd.stdin_data.empty()) in.write.reset();
    std::array<char, kChunk> buf;
    bool timed_out = false;
    // Until the child has closed stdout and stderr (and taken or refused its stdin).
    while (in.write || out.read || err.read) {
        const int wait_ms = millis_until(deadline);
        if (wait_ms == 0) {
            timed_out = true;
            break;
        }
        // The open ends, in this order: stdin, stdout, stderr.
        std::array<pollfd, 3> fds{};
        std::array<fs::Fd*, 3> ends{};
        nfds_t n = 0;
        const std::array<std::pair<fs::Fd*, short>, 3> wanted{{{&in.write, POLLOUT}, {&out.read, POLLIN}, {&err.read, POLLIN}}};
        for (const auto& [fd, events] : wanted) {
            if (!*fd) continue;
            fds[n] = pollfd{.fd = fd->get(), .events = events, .revents = 0};
            ends[n++] = fd;
        }
        if (::poll(fds.data(), n, wait_ms) < 0) {
            if (errno == EINTR) continue;
            throw fs::errno_error("poll");
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            if (ends[i] == &in.write)
                feed_once(in.write, cmd.stdin_data, offset);
            else if (ends[i] == &out.read)
                drain_once(out.read, result.out, cmd.stdout_cap, buf);
            else
                drain_once(err.read, result.err, cmd.stderr_cap, buf);
        }
    }
    result.stdin_written = offset;

    int status = 0;
    rusage ru{};
    // Its outputs are closed; now the child itself must end before the deadline.
    while (!timed_out && !child.reap(WNOHANG, status, ru)) {
        const int wait_ms = millis_until(deadline);
        if (wait_ms == 0) {
            timed_out = true;
            break;
        }
        const int step = wait_ms < kReapInterval.count() ? wait_ms : static_cast<int>(kReapInterval.count());
        ::poll(nullptr, 0, step);
    }
    if (timed_out) {
        child.kill_group();
        in.write.reset();
        out.read.reset();
        err.read.reset();
        child.reap(0, status, ru);
    }

    take_wait_status(status, result);
    if (timed_out) result.ending = Ending::TimedOut;
    result.max_rss_kib = ru.ru_maxrss;
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return result;
}

namespace {

// While an attached child runs, how often to look whether it has ended when
// its message pipe is still open.
constexpr std::chrono::milliseconds kAttachedPoll{100};

// SIGINT and SIGQUIT ignored while this lives, as they were afterwards.
class InterruptsIgnored {
public:
    InterruptsIgnored() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigemptyset(&ignore.sa_mask);
        if (::sigaction(SIGINT, &ignore, &old_int_) != 0) throw fs::errno_error("sigaction(SIGINT)");
        if (::sigaction(SIGQUIT, &ignore, &old_quit_) != 0) {
            const int e = errno;
            ::sigaction(SIGINT, &old_int_, nullptr);
            errno = e;
            throw fs::errno_error("sigaction(SIGQUIT)");
        }
    }
    ~InterruptsIgnored() {
        ::sigaction(SIGQUIT, &old_quit_, nullptr);
        ::sigaction(SIGINT, &old_int_, nullptr);
    }
    InterruptsIgnored(const InterruptsIgnored&) = delete;
    InterruptsIgnored& operator=(const InterruptsIgnored&) = delete;

private:
    struct sigaction old_int_ {};
    struct sigaction old_quit_ {};
};

// Every signal this process does not ignore now (SIGKILL and SIGSTOP, which
// cannot be set, left out).
sigset_t signals_not_ignored() {
    sigset_t set;
    ::sigemptyset(&set);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct sigaction now {};
        if (::sigaction(sig, nullptr, &now) != 0) continue;  // a number the C library keeps for itself
        if (now.sa_handler != SIG_IGN) ::sigaddset(&set, sig);
    }
    return set;
}

}  // namespace

AttachedOutcome run_attached(const AttachedCommand& cmd) {
    if (cmd.argv.empty()) throw std::invalid_argument("process::run_attached: empty argv");

    Pipe message;
    FileActions actions;
    if (cmd.message_pipe) {
        message = make_pipe();
        // Above kMessageFd, so that dup2 makes the child's kMessageFd anew
        // (without FD_CLOEXEC) and closefrom leaves nothing else.
        if (message.write.get() <= kMessageFd) {
            const int moved = ::fcntl(message.write.get(), F_DUPFD_CLOEXEC, kMessageFd + 1);
            if (moved < 0) throw fs::errno_error("fcntl(F_DUPFD_CLOEXEC)");
            message.write = fs::Fd(moved);
        }
        actions.dup2(message.write.get(), kMessageFd);
        actions.close_from(kMessageFd + 1);
    } else {
        actions.close_from(3);
    }
    std::vector<char*> argv = c_strings(cmd.argv);
    std::vector<char*> envp = c_strings(cmd.env);

    // What the child starts with is decided before SIGINT and SIGQUIT are
    // ignored here: they are at their default in the child unless our caller
    // already ignored them.
    const SpawnAttr attr(signals_not_ignored());
    const InterruptsIgnored interrupts;
    pid_t pid = -1;
    if (int rc = ::posix_spawn(&pid, argv[0], actions.get(), attr.get(), argv.data(), envp.data()); rc != 0)
        fail_rc(rc, "cannot run " + cmd.argv[0]);
    Child child(pid, Group::Ours);
    message.write.reset();

    AttachedOutcome result;
    int status = 0;
    rusage ru{};
    std::array<char, kChunk> buf;
    if (message.read) {
        set_nonblocking(message.read.get());
        // Read the message while the child runs (it may write more than a
        // pipe holds); once the pipe is closed, just wait.
        while (message.read) {
            pollfd p{.fd = message.read.get(), .events = POLLIN, .revents = 0};
            const int n = ::poll(&p, 1, static_cast<int>(kAttachedPoll.count()));
            if (n < 0 && errno != EINTR) throw fs::errno_error("poll");
            if (n > 0) drain_once(message.read, result.message, cmd.message_cap, buf);
            if (child.reap(WNOHANG, status, ru)) break;
        }
        // The child has ended (or closed the pipe): what it left in the pipe.
        for (std::uint64_t seen = ~std::uint64_t{0}; message.read;) {
            const std::uint64_t now = result.message.data.size() + result.message.dropped;
            if (now == seen) break;
            seen = now;
            drain_once(message.read, result.message, cmd.message_cap, buf);
        }
    }
    if (!child.reaped()) child.reap(0, status, ru);
    message.read.reset();

    take_wait_status(status, result);
    return result;
}

std::vector<std::string> with_overrides(std::span<const std::string> base, std::span<const std::string> overrides) {
    auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
    std::vector<std::string> env(base.begin(), base.end());
    for (const auto& o : overrides) {
        const std::string_view name = name_of(o);
        bool replaced = false;
        for (auto& e : env) {
            if (name_of(e) == name) {
                e = o;
                replaced = true;
            }
        }
        if (!replaced) env.push_back(o);
    }
    return env;
}

}  // namespace condaguard::process
