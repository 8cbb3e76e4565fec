// Runs a child process with its output captured: argv (no shell, no PATH
// search), a complete environment built by the caller, data for its stdin,
// stdout and stderr each capped, a timeout after which the child's process
// group gets SIGKILL, and its exit status, signal and peak RSS. Returns data,
// never prints.
//
// run_attached runs an interactive child instead: it shares this process's
// stdin, stdout, stderr and process group (a terminal stays its terminal,
// Ctrl-C reaches it), has no timeout, and may be given one pipe of its own
// for a short message back.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace condaguard::process {

// Bytes kept of each of stdout and stderr unless a Command says otherwise.
inline constexpr std::size_t kDefaultOutputCap = std::size_t{64} << 20;  // 64 MiB

struct Command {
    // argv[0] is the path of the program, run as given (no PATH search, no shell).
    std::vector<std::string> argv;
    // The child's whole environment, NAME=VALUE each; see with_overrides.
    std::vector<std::string> env;
    // Written to the child's stdin, which is then closed (an empty string: stdin
    // is at end of file at once). A child that stops reading does not block us.
    std::string stdin_data;
    // After this the child's process group is killed with SIGKILL.
    std::chrono::milliseconds timeout = std::chrono::seconds(60);
    // Bytes kept of stdout / stderr; the rest is read, counted and discarded.
    std::size_t stdout_cap = kDefaultOutputCap;
    std::size_t stderr_cap = kDefaultOutputCap;
};

enum class Ending {
    Exited,    // exit_code holds the status passed to exit()
    Signaled,  // signal holds the signal that ended it
    // The timeout passed before the child ended and closed its outputs; its
    // process group was killed with SIGKILL (exit_code or signal say how the
    // child itself ended: usually signal 9).
    TimedOut,
};

struct Captured {
    std::string data;            // at most the cap
    std::uint64_t dropped = 0;   // bytes that arrived beyond the cap
};

struct Outcome {
    Ending ending = Ending::Exited;
    int exit_code = -1;  // when the child exited
    int signal = 0;      // when a signal ended it
    Captured out;
    Captured err;
    // Bytes of stdin_data the child accepted before closing its stdin.
    std::size_t stdin_written = 0;
    long max_rss_kib = 0;
    std::chrono::milliseconds elapsed{0};

    // The status as a shell reports it: the exit code, or 128 + the signal.
    int shell_status() const noexcept { return signal != 0 ? 128 + signal : exit_code; }
};

// Runs the command to its end (or its timeout) and returns what happened.
// Throws std::system_error when it cannot be started (no such program, not
// executable, no pipes); throws std::invalid_argument for an empty argv.
Outcome run(const Command& cmd);

// A child attached to this process's terminal (see the top of this file).
struct AttachedCommand {
    std::vector<std::string> argv;  // as Command's
    std::vector<std::string> env;   // as Command's
    // When true, the write end of a pipe is the child's descriptor
    // kMessageFd; what it writes there is returned (up to message_cap).
    bool message_pipe = false;
    std::size_t message_cap = 4096;
};

// The child's descriptor of AttachedCommand's message pipe.
inline constexpr int kMessageFd = 3;

struct AttachedOutcome {
    Ending ending = Ending::Exited;  // Exited or Signaled: there is no timeout
    int exit_code = -1;
    int signal = 0;
    Captured message;  // empty unless message_pipe

    int shell_status() const noexcept { return signal != 0 ? 128 + signal : exit_code; }
};

// Runs the command to its end and returns how it ended. The child gets this
// process's descriptors 0-2 as they are, the message pipe as kMessageFd when
// asked for, and nothing else; its signal mask is ours and every signal this
// process does not ignore is at its default action. Meanwhile this process
// ignores SIGINT and SIGQUIT (as system(3) does: the terminal sends them to
// the child too, which decides) and restores them afterwards. Throws
// std::system_error when it cannot be started, std::invalid_argument for an
// empty argv.
AttachedOutcome run_attached(const AttachedCommand& cmd);

// `base` (NAME=VALUE entries, e.g. the caller's environment) with each entry
// of `overrides` replacing the entry of the same NAME, or added after them.
// Pure: the library never reads the process environment itself.
std::vector<std::string> with_overrides(std::span<const std::string> base, std::span<const std::string> overrides);

}  // namespace condaguard::process
