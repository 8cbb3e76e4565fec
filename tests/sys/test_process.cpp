// process::run: output captured and capped, exit codes and signals, a
// timeout that kills, stdin that cannot block us (threats A12, A13).
#include <condaguard/sys/process.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>

using namespace condaguard;
using namespace std::chrono_literals;
using condaguard::test::Deadline;

namespace {

process::Command sh(const std::string& script) { return {.argv = {"/bin/sh", "-c", script}, .env = {"PATH=/usr/bin:/bin"}}; }

// True when `pid` is gone or a zombie waiting for its reaper.
bool dead(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return true;
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

}  // namespace

TEST(Process, CapturesStdoutStderrAndExitCode) {
    Deadline d(10);
    const auto r = process::run(sh("echo out; echo err >&2; exit 3"));
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.shell_status(), 3);
    EXPECT_EQ(r.out.data, "out\n");
    EXPECT_EQ(r.err.data, "err\n");
    EXPECT_EQ(r.out.dropped, 0u);
    EXPECT_GT(r.max_rss_kib, 0);
}

TEST(Process, PassesBinaryStdinThrough) {
    Deadline d(10);
    std::string data("a\0b\nc", 5);
    for (int i = 0; i < 20; ++i) data += data;  // 5 MiB: more than any pipe holds
    const auto r = process::run({.argv = {"/bin/cat"}, .stdin_data = data});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.stdin_written, data.size());
    EXPECT_TRUE(r.out.data == data);
}

TEST(Process, EmptyStdinIsEndOfFile) {
    Deadline d(10);
    const auto r = process::run({.argv = {"/bin/cat"}, .timeout = 5s});
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.data, "");
}

TEST(Process, ReportsTheSignalThatEndedTheChild) {
    Deadline d(10);
    const auto r = process::run(sh("kill -TERM $$"));
    EXPECT_EQ(r.ending, process::Ending::Signaled);
    EXPECT_EQ(r.signal, SIGTERM);
    EXPECT_EQ(r.shell_status(), 128 + SIGTERM);
}

TEST(Process, A13_timeout_kills_a_hung_child) {
    Deadline d(10);
    const auto r = process::run({.argv = {"/bin/sleep", "100"}, .timeout = 300ms});
    EXPECT_EQ(r.ending, process::Ending::TimedOut);
    EXPECT_EQ(r.signal, SIGKILL);
    EXPECT_GE(r.elapsed, 300ms);
    EXPECT_LT(r.elapsed, 5s);
}

TEST(Process, A13_timeout_kills_what_the_child_started) {
    Deadline d(10);
    // The grandchild keeps stdout open, so the output never ends.
    auto c = sh("/bin/sleep 100 & echo $!; wait");
    c.timeout = 300ms;
    const auto t = process::run(c);
    EXPECT_EQ(t.ending, process::Ending::TimedOut);
    const pid_t grandchild = std::stoi(t.out.data);
    for (int i = 0; i < 200 && !dead(grandchild); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(dead(grandchild)) << "sleep " << grandchild << " survived the timeout";
}

TEST(Process, A13_timeout_when_the_child_closes_its_outputs_and_stays) {
    Deadline d(10);
    auto c = sh("exec >&- 2>&-; /bin/sleep 100");
    c.timeout = 300ms;
    const auto r = process::run(c);
    EXPECT_EQ(r.ending, process::Ending::TimedOut);
    EXPECT_LT(r.elapsed, 5s);
}

TEST(Process, A13_child_that_never_reads_stdin_does_not_block_us) {
    Deadline d(10);
    const std::string big(16 << 20, 'x');
    // The child exits without reading: the rest of stdin is refused (EPIPE,
    // not SIGPIPE, which would end this test binary).
    auto quits = sh("echo bye");
    quits.stdin_data = big;
    const auto r = process::run(quits);
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.out.data, "bye\n");
    EXPECT_LT(r.stdin_written, big.size());
    // The child never reads and never exits: the timeout ends it.
    auto stays = process::Command{.argv = {"/bin/sleep", "100"}, .stdin_data = big, .timeout = 300ms};
    EXPECT_EQ(process::run(stays).ending, process::Ending::TimedOut);
}

TEST(Process, A13_stdin_is_written_while_output_is_read) {
    Deadline d(10);
    // The child writes 4 MiB before it reads anything: writing all of stdin
    // first would fill both pipes and wait forever.
    auto c = sh("head -c 4194304 /dev/zero; cat >/dev/null; echo done >&2");
    c.stdin_data = std::string(4 << 20, 'y');
    const auto r = process::run(c);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.out.data.size(), 4u << 20);
    EXPECT_EQ(r.stdin_written, 4u << 20);
    EXPECT_EQ(r.err.data, "done\n");
}

TEST(Process, A12_output_beyond_the_cap_is_counted_not_kept) {
    Deadline d(10);
    auto c = sh("head -c 300000 /dev/zero; head -c 5000 /dev/zero >&2");
    c.stdout_cap = 100000;
    c.stderr_cap = 1000;
    const auto r = process::run(c);
    EXPECT_EQ(r.exit_code, 0);  // read to the end: the child was never blocked
    EXPECT_EQ(r.out.data.size(), 100000u);
    EXPECT_EQ(r.out.dropped, 200000u);
    EXPECT_EQ(r.err.data.size(), 1000u);
    EXPECT_EQ(r.err.dropped, 4000u);
}

TEST(Process, TheEnvironmentIsExactlyTheOneGiven) {
    Deadline d(10);
    ASSERT_EQ(::setenv("CONDAGUARD_TEST_PARENT_ONLY", "leak", 1), 0);
    auto c = sh("echo \"$FOO|${CONDAGUARD_TEST_PARENT_ONLY-unset}\"");
    c.env.push_back("FOO=bar baz");
    const auto r = process::run(c);
    ::unsetenv("CONDAGUARD_TEST_PARENT_ONLY");
    EXPECT_EQ(r.out.data, "bar baz|unset\n");
}

TEST(Process, WithOverridesReplacesByNameAndAppends) {
    const std::vector<std::string> base{"HOME=/home/u", "PATH=/bin", "HOMEDIR=x"};
    const std::vector<std::string> over{"HOME=/tmp/h", "CONDA_KEYS_DIR=", "NEW=1"};
    EXPECT_EQ(process::with_overrides(base, over),
              (std::vector<std::string>{"HOME=/tmp/h", "PATH=/bin", "HOMEDIR=x", "CONDA_KEYS_DIR=", "NEW=1"}));
}

TEST(Process, OnlyStdioReachesTheChild) {
    Deadline d(10);
    // A descriptor this process leaked without O_CLOEXEC still stays here.
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    ASSERT_EQ(::dup2(null, 42), 42);  // dup2 leaves FD_CLOEXEC off
    ::close(null);
    const auto r = process::run(sh("for fd in 0 1 2 42; do test -e /proc/$$/fd/$fd && echo \"$fd open\"; done"));
    ::close(42);
    EXPECT_EQ(r.out.data, "0 open\n1 open\n2 open\n");
}

TEST(Process, AMissingProgramThrows) {
    try {
        process::run({.argv = {"/nonexistent/program"}});
        FAIL() << "no exception";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENOENT);
    }
    EXPECT_THROW(process::run({}), std::invalid_argument);
}

namespace {
void on_usr1(int) {}
}  // namespace

TEST(Process, InterruptingSignalsChangeNothing) {
    Deadline d(10);
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = on_usr1;  // no SA_RESTART: poll, read and write see EINTR
    ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    timer_t timer{};
    ASSERT_EQ(::timer_create(CLOCK_MONOTONIC, &ev, &timer), 0);
    const itimerspec every_ms{{0, 1'000'000}, {0, 1'000'000}};
    ASSERT_EQ(::timer_settime(timer, 0, &every_ms, nullptr), 0);
    auto c = sh("/bin/sleep 0.2; cat; echo end");
    c.stdin_data = std::string(1 << 20, 'z');
    const auto r = process::run(c);
    ::timer_delete(timer);
    ::sigaction(SIGUSR1, &old, nullptr);
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.out.data, std::string(1 << 20, 'z') + "end\n");
}

// process::run_attached: an interactive child on our terminal (the wrapper's
// conda run), with one message pipe.
namespace {

process::AttachedCommand attached(const std::string& script) {
    return {.argv = {"/bin/sh", "-c", script}, .env = {"PATH=/usr/bin:/bin"}};
}

// This process's stdout sent to a file while this lives.
class StdoutToFile {
public:
    explicit StdoutToFile(const std::string& path) {
        std::fflush(stdout);
        saved_ = ::dup(1);
        const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (saved_ < 0 || f < 0 || ::dup2(f, 1) != 1) throw std::system_error(errno, std::generic_category(), path);
        ::close(f);
    }
    ~StdoutToFile() {
        ::dup2(saved_, 1);
        ::close(saved_);
    }
    StdoutToFile(const StdoutToFile&) = delete;
    StdoutToFile& operator=(const StdoutToFile&) = delete;

private:
    int saved_ = -1;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(ProcessAttached, SharesOurStdoutAndProcessGroup) {
    Deadline d(10);
    condaguard::test::TempDir t;
    const std::string out = (t.path() / "out").string();
    process::AttachedOutcome r;
    {
        const StdoutToFile to(out);
        r = process::run_attached(attached("echo hello; cut -d' ' -f5 /proc/$$/stat"));
    }
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(slurp(out), "hello\n" + std::to_string(::getpgrp()) + "\n");
    EXPECT_TRUE(r.message.data.empty());
}

TEST(ProcessAttached, TheMessagePipeIsDescriptor3AndNothingElseLeaks) {
    Deadline d(10);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(null, 0);
    ASSERT_EQ(::dup2(null, 42), 42);  // no FD_CLOEXEC
    ::close(null);
    condaguard::test::TempDir t;
    const std::string out = (t.path() / "out").string();
    auto c = attached("echo registered >&3; for fd in 3 4 42; do test -e /proc/$$/fd/$fd && echo \"$fd open\"; done; exit 0");
    c.message_pipe = true;
    process::AttachedOutcome r;
    {
        const StdoutToFile to(out);
        r = process::run_attached(c);
    }
    ::close(42);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.message.data, "registered\n");
    EXPECT_EQ(slurp(out), "3 open\n");

    // Without the pipe, descriptor 3 is not open either.
    {
        const StdoutToFile to(out);
        r = process::run_attached(attached("test -e /proc/$$/fd/3 && echo open; exit 0"));
    }
    EXPECT_EQ(slurp(out), "");
}

TEST(ProcessAttached, ExitStatusAndSignalArePassedOn) {
    Deadline d(10);
    auto r = process::run_attached(attached("exit 7"));
    EXPECT_EQ(r.ending, process::Ending::Exited);
    EXPECT_EQ(r.shell_status(), 7);
    r = process::run_attached(attached("kill -TERM $$"));
    EXPECT_EQ(r.ending, process::Ending::Signaled);
    EXPECT_EQ(r.signal, SIGTERM);
    EXPECT_EQ(r.shell_status(), 128 + SIGTERM);
}

TEST(ProcessAttached, A13_a_long_message_does_not_block_and_is_capped) {
    Deadline d(10);
    auto c = attached("head -c 300000 /dev/zero >&3; exit 0");  // more than a pipe holds
    c.message_pipe = true;
    c.message_cap = 100;
    const auto r = process::run_attached(c);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.message.data, std::string(100, '\0'));
    EXPECT_EQ(r.message.dropped, 300000u - 100u);
}

TEST(ProcessAttached, A13_a_grandchild_holding_the_pipe_does_not_hold_us) {
    Deadline d(10);
    auto c = attached("echo done >&3; /bin/sleep 6 >/dev/null 2>&1 & exit 4");
    c.message_pipe = true;
    const auto start = std::chrono::steady_clock::now();
    const auto r = process::run_attached(c);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_EQ(r.exit_code, 4);
    EXPECT_EQ(r.message.data, "done\n");
}

TEST(ProcessAttached, InterruptsGoToTheChildWhileWeWait) {
    Deadline d(10);
    struct sigaction before {};
    ASSERT_EQ(::sigaction(SIGINT, nullptr, &before), 0);
    // Our SIGINT (as the terminal's Ctrl-C sends to the whole group) is
    // ignored while the child runs; the child's is at its default.
    auto r = process::run_attached(attached("kill -INT $PPID; /bin/sleep 0.1; echo alive >/dev/null; exit 5"));
    EXPECT_EQ(r.exit_code, 5);
    r = process::run_attached(attached("kill -INT $$; exit 0"));
    EXPECT_EQ(r.ending, process::Ending::Signaled);
    EXPECT_EQ(r.signal, SIGINT);
    struct sigaction after {};
    ASSERT_EQ(::sigaction(SIGINT, nullptr, &after), 0);
    EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(ProcessAttached, AMissingProgramThrows) {
    EXPECT_THROW(process::run_attached({.argv = {"/nonexistent/program"}}), std::system_error);
    EXPECT_THROW(process::run_attached({}), std::invalid_argument);
}
