#include <condaguard/channel/state.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/secure_dir.hpp>

#include <fmt/format.h>

#include <algorithm>

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
    if (auto why = fs::foreign_owner(st)) throw std::runtime_error(path.string() + " is " + *why);
    if (auto why = fs::writable_by_others(st)) throw std::runtime_error(path.string() + " is " + *why);
}

// Holds an exclusive flock on DIR/state.lock for a read-modify-write.
class StateLock {
public:
    explicit StateLock(const std::filesystem::path& dir) : dir_(open_state_dir(dir, fs::CreateMissing::Yes)) {
        const fs::Fd& dirfd = dir_;
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

    // The checked state directory: state.json is written inside it.
    int dir() const noexcept { return dir_.get(); }

private:
    fs::Fd dir_;
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
    nlohmann::json j;
    try {
        j = read_json(f.fd.get(), JsonLimits{.max_bytes = max_state_json_bytes}, path.string());
    } catch (const JsonError& e) {
        throw std::runtime_error(path.string() + ": state file is damaged (" + e.what() + "); inspect it or remove it with care");
    }
    // A damaged state file must not silently reset rollback protection.
    if (!j.is_object() || j.value("format", 0) != state_format ||
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

namespace {

constexpr const char* location_subdirs_key = "location_subdirs";

// DIR/state.json's "location_subdirs" (absent in files written before it existed).
const nlohmann::json& location_subdirs(const nlohmann::json& j, const std::filesystem::path& dir) {
    static const nlohmann::json none = nlohmann::json::object();
    auto it = j.find(location_subdirs_key);
    if (it == j.end()) return none;
    if (!it->is_object())
        throw std::runtime_error((dir / "state.json").string() + ": state file is damaged; inspect it or remove it with care");
    return *it;
}

}  // namespace

std::vector<std::string> StateStore::subdirs_at(const std::string& location) const {
    const auto j = load();
    std::vector<std::string> out;
    const auto& per_location = location_subdirs(j, dir_);
    if (auto it = per_location.find(location); it != per_location.end()) {
        if (!it->is_array()) throw std::runtime_error((dir_ / "state.json").string() + ": state file is damaged");
        for (const auto& s : *it)
            if (s.is_string()) out.push_back(s.get<std::string>());
    } else if (auto ch = channel_at(location)) {
        if (auto c = j["channels"].find(*ch); c != j["channels"].end() && c->is_object())
            for (const auto& [subdir, seen] : c->items()) out.push_back(subdir);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

void StateStore::record(const std::string& location, const std::string& channel, const std::string& subdir,
                        const SeenIndex& seen) {
    StateLock lock(dir_);
    auto j = load();
    auto& e = j["channels"][channel][subdir];
    if (!e.is_object() || e.value("version", std::int64_t{0}) <= seen.version)
        e = {{"version", seen.version}, {"sha256", seen.sha256}, {"signed_at", seen.signed_at}};
    j["locations"][location] = channel;
    location_subdirs(j, dir_);  // refuses a damaged entry before it is extended
    auto& subdirs = j[location_subdirs_key][location];
    if (!subdirs.is_array()) subdirs = nlohmann::json::array();
    if (std::find(subdirs.begin(), subdirs.end(), subdir) == subdirs.end()) subdirs.push_back(subdir);
    fs::write_atomic_at(lock.dir(), "state.json", j.dump(2) + "\n", 0600, false, dir_ / "state.json");
}

bool StateStore::reset(const std::string& channel) {
    StateLock lock(dir_);
    auto j = load();
    bool known = j["channels"].erase(channel) > 0;
    for (auto it = j["locations"].begin(); it != j["locations"].end();) {
        if (*it == channel) {
            if (j.contains(location_subdirs_key) && j[location_subdirs_key].is_object())
                j[location_subdirs_key].erase(it.key());
            it = j["locations"].erase(it);
            known = true;
        } else {
            ++it;
        }
    }
    fs::write_atomic_at(lock.dir(), "state.json", j.dump(2) + "\n", 0600, false, dir_ / "state.json");
    return known;
}

nlohmann::json StateStore::dump() const { return load(); }

}  // namespace condaguard
