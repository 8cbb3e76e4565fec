#include <condaguard/channel/state.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/secure_dir.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {

namespace {

constexpr int state_format = 1;

// The state directory and its ancestors must be the user's or root's and not
// writable by group or others (sys/secure_dir.hpp), as must each state file:
// whoever can change them can undo rollback protection.
std::runtime_error unsafe_state_dir(const std::filesystem::path& dir, const fs::UnsafeDirectory& e) {
    if (e.fault().path == dir) return std::runtime_error("state directory " + e.fault().why);
    return std::runtime_error(fmt::format("state directory {} is not safe: {}", dir.string(), e.what()));
}

fs::Fd open_state_dir(const std::filesystem::path& dir, fs::CreateMissing create) {
    try {
        return fs::open_secure_dir(dir, create);
    } catch (const fs::UnsafeDirectory& e) {
        throw unsafe_state_dir(dir, e);
    }
}

void check_state_file(const std::filesystem::path& path, const struct stat& st) {
    if (st.st_uid != 0 && st.st_uid != ::geteuid())
        throw std::runtime_error(fmt::format("{} is owned by uid {}, not by you or root", path.string(), st.st_uid));
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        throw std::runtime_error(fmt::format("{} is writable by group or others (mode {:04o})", path.string(),
                                             st.st_mode & 07777));
}

// Holds an exclusive flock on DIR/state.lock for a read-modify-write.
class StateLock {
public:
    explicit StateLock(const std::filesystem::path& dir) {
        const fs::Fd dirfd = open_state_dir(dir, fs::CreateMissing::Yes);
        const auto path = dir / "state.lock";
        fd_ = fs::open_at_raw(dirfd.get(), "state.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600);
        if (!fd_) throw fs::errno_error(path.string());
        const struct stat st = fs::fstat_or_throw(fd_.get(), path.string());
        if (!S_ISREG(st.st_mode))
            throw fs::NotRegularFile(fs::kind_of(st.st_mode), path.string());
        check_state_file(path, st);
        while (::flock(fd_.get(), LOCK_EX) != 0) {
            if (errno != EINTR) throw fs::errno_error("flock " + path.string());
        }
    }

private:
    fs::Fd fd_;
};

}  // namespace

nlohmann::json StateStore::load() const {
    const auto path = dir_ / "state.json";
    const auto empty = [] {
        return nlohmann::json{{"format", state_format}, {"channels", nlohmann::json::object()},
                              {"locations", nlohmann::json::object()}};
    };
    fs::Fd dirfd;
    try {
        dirfd = fs::open_secure_dir(dir_);
    } catch (const fs::UnsafeDirectory& e) {
        if (e.fault().kind == fs::DirFaultKind::Missing) return empty();  // nothing seen yet
        throw unsafe_state_dir(dir_, e);
    }
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(dirfd.get(), "state.json", path);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) return empty();
        throw std::runtime_error(path.string() + " " + e.what());
    }
    check_state_file(path, f.st);
    auto r = fs::read_capped(f.fd.get(), 64 << 20, path.string());
    auto j = nlohmann::json::parse(r.data, nullptr, false);
    // A damaged state file must not silently reset rollback protection.
    if (r.too_big || j.is_discarded() || !j.is_object() || j.value("format", 0) != state_format ||
        !j.contains("channels") || !j["channels"].is_object() || !j.contains("locations") ||
        !j["locations"].is_object())
        throw std::runtime_error(path.string() + ": state file is damaged; inspect it or remove it with care");
    return j;
}

std::optional<SeenIndex> StateStore::seen(const std::string& channel, const std::string& subdir) const {
    const auto j = load();
    const auto& ch = j["channels"];
    if (!ch.contains(channel) || !ch[channel].contains(subdir)) return std::nullopt;
    const auto& e = ch[channel][subdir];
    return SeenIndex{e.value("version", std::int64_t{0}), e.value("sha256", ""), e.value("signed_at", "")};
}

std::optional<std::string> StateStore::channel_at(const std::string& location) const {
    const auto j = load();
    auto it = j["locations"].find(location);
    if (it == j["locations"].end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

void StateStore::record(const std::string& location, const std::string& channel, const std::string& subdir,
                        const SeenIndex& seen) {
    StateLock lock(dir_);
    auto j = load();
    auto& e = j["channels"][channel][subdir];
    if (!e.is_object() || e.value("version", std::int64_t{0}) <= seen.version)
        e = {{"version", seen.version}, {"sha256", seen.sha256}, {"signed_at", seen.signed_at}};
    j["locations"][location] = channel;
    fs::write_atomic(dir_ / "state.json", j.dump(2) + "\n", 0600, false);
}

bool StateStore::reset(const std::string& channel) {
    StateLock lock(dir_);
    auto j = load();
    bool known = j["channels"].erase(channel) > 0;
    for (auto it = j["locations"].begin(); it != j["locations"].end();) {
        if (*it == channel) {
            it = j["locations"].erase(it);
            known = true;
        } else {
            ++it;
        }
    }
    fs::write_atomic(dir_ / "state.json", j.dump(2) + "\n", 0600, false);
    return known;
}

nlohmann::json StateStore::dump() const { return load(); }

}  // namespace condaguard
