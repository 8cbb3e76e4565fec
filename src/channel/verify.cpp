#include <condaguard/channel/verify.hpp>
#include <condaguard/channel/layout.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/package/archive.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/parallel.hpp>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;

namespace dom = simdjson::dom;

// The index's own private copy (never a mapping of a file others may
// change), the parser whose string buffer holds every string unescaped, the
// records (views into that buffer) and the info object.
struct IndexData {
    simdjson::padded_string bytes;
    dom::parser parser;
    std::vector<IndexRecord> records;
    nlohmann::json info;
};

std::vector<Result> ChannelReport::all() const {
    std::vector<Result> out;
    for (const auto& s : subdirs) {
        out.push_back(s.index);
        out.insert(out.end(), s.packages.begin(), s.packages.end());
    }
    return out;
}

std::span<const IndexRecord> VerifiedIndex::records() const {
    return data ? std::span<const IndexRecord>(data->records) : std::span<const IndexRecord>();
}

namespace {

[[noreturn]] void malformed(const std::string& why) { throw VerdictError(Verdict::Invalid, "signed index: " + why); }

void check(simdjson::error_code e) {
    if (e != simdjson::SUCCESS) malformed(fmt::format("not valid JSON: {}", simdjson::error_message(e)));
}

// ---- parsing: one walk over simdjson's DOM with an explicit stack --------

// Where a container sits, for the records it may hold.
enum class Role : unsigned char { Other, Top, Packages, Record };

// Duplicate keys: while an object's keys arrive in strictly increasing
// order (conda's indexers and ours sort them) each is compared with the one
// before it only; at the first key out of order, the keys so far go into a
// hash set and every later key is looked up there.
// An open-addressing set of the keys of one object (views into the DOM).
class KeySet {
public:
    explicit KeySet(std::size_t expected) {
        std::size_t n = 64;
        while (n < 2 * expected) n *= 2;
        slots_.resize(n);
    }
    bool insert(std::string_view k) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        return place(Slot{k.data() != nullptr ? k : std::string_view(""), std::hash<std::string_view>{}(k)});
    }

private:
    struct Slot {
        std::string_view key;  // data() == nullptr: empty slot
        std::size_t hash = 0;
    };
    bool place(const Slot& s) {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = s.hash & mask;; i = (i + 1) & mask) {
            Slot& at = slots_[i];
            if (at.key.data() == nullptr) {
                at = s;
                ++size_;
                return true;
            }
            if (at.hash == s.hash && at.key == s.key) return false;
        }
    }
    void grow() {
        std::vector<Slot> old(slots_.size() * 2);
        old.swap(slots_);
        size_ = 0;
        for (const Slot& s : old)
            if (s.key.data() != nullptr) place(s);
    }
    std::vector<Slot> slots_;
    std::size_t size_ = 0;
};

struct Frame {
    Role role = Role::Other;
    bool is_object = false;
    dom::object::iterator oit, oend;
    dom::array::iterator ait, aend;
    std::string_view under;         // the key this container is the value of (for messages)
    std::size_t keys_from = 0;      // this object's keys in Walker::keys_, while sorted
    std::string_view last_key;
    std::size_t size_hint = 0;      // the object's key count, as the DOM gives it
    std::unique_ptr<KeySet> seen;   // once out of order
    std::size_t record = 0;         // Role::Record: index into the records
};

class Walker {
public:
    explicit Walker(std::vector<IndexRecord>& out) : records_(out) {}

    // Checks every object of the document for a repeated key (compared
    // unescaped, as the DOM holds them) and collects the records of
    // "packages" and "packages.conda". Nesting is already capped by the parser.
    void walk(dom::element root, const std::atomic<bool>& cancelled) {
        if (root.type() != dom::element_type::OBJECT) malformed("the document is not a JSON object");
        push(root, Role::Top, "");
        while (!stack_.empty()) {
            Frame& f = stack_.back();
            if (f.is_object) {
                if (f.oit == f.oend) {
                    keys_.resize(f.keys_from);
                    stack_.pop_back();
                    continue;
                }
                const dom::key_value_pair kv = *f.oit;
                ++f.oit;
                unique(f, kv.key);
                field(f, kv.key, kv.value, cancelled);
            } else {
                if (f.ait == f.aend) {
                    stack_.pop_back();
                    continue;
                }
                const dom::element e = *f.ait;
                ++f.ait;
                if (is_container(e)) push(e, Role::Other, "[]");
            }
        }
    }

private:
    static bool is_container(dom::element e) {
        return e.type() == dom::element_type::OBJECT || e.type() == dom::element_type::ARRAY;
    }

    std::string where() const {
        std::string w;
        for (const auto& f : stack_) {
            if (f.role == Role::Top) continue;
            if (!w.empty()) w += '/';
            w += f.under;
        }
        return w.empty() ? "the top level" : w;
    }

    void unique(Frame& f, std::string_view key) {
        bool fresh = true;
        if (f.seen) {
            fresh = f.seen->insert(key);
        } else if (keys_.size() == f.keys_from || f.last_key < key) {
            keys_.push_back(key);
        } else {
            f.seen = std::make_unique<KeySet>(f.size_hint);
            for (auto it = keys_.begin() + static_cast<std::ptrdiff_t>(f.keys_from); it != keys_.end(); ++it)
                f.seen->insert(*it);
            fresh = f.seen->insert(key);
        }
        f.last_key = key;
        if (!fresh) malformed(fmt::format("{} in {}", duplicate_key_message(key), where()));
    }

    void field(Frame& f, std::string_view key, dom::element v, const std::atomic<bool>& cancelled) {
        switch (f.role) {
        case Role::Top:
            if (key == "packages" || key == "packages.conda") {
                if (v.type() != dom::element_type::OBJECT) malformed(fmt::format("'{}' is not an object", key));
                push(v, Role::Packages, key);
                return;
            }
            break;
        case Role::Packages: {
            if (v.type() != dom::element_type::OBJECT)
                malformed(fmt::format("{}/{} is not an object", f.under, key));
            if (cancelled.load(std::memory_order_relaxed)) throw std::runtime_error("cancelled");
            const std::size_t i = records_.size();
            records_.push_back(IndexRecord{.fn = key});
            push(v, Role::Record, key);
            stack_.back().record = i;
            return;
        }
        case Role::Record: record_field(records_[f.record], key, v); break;
        case Role::Other: break;
        }
        if (is_container(v)) push(v, Role::Other, key);
    }

    void record_field(IndexRecord& r, std::string_view key, dom::element v) {
        auto str = [&](std::string_view& to) {
            if (v.get_string().get(to) != simdjson::SUCCESS)
                malformed(fmt::format("{}/{} is not a string", r.fn, key));
        };
        if (key == "sha256") str(r.sha256);
        else if (key == "md5") str(r.md5);
        else if (key == "name") str(r.name);
        else if (key == "version") str(r.version);
        else if (key == "build") str(r.build);
        else if (key == "subdir") str(r.subdir);
        else if (key == "size") {
            if (v.get_uint64().get(r.size) != simdjson::SUCCESS)
                malformed(fmt::format("{}/size is not a non-negative integer", r.fn));
            r.has_size = true;
        }
    }

    void push(dom::element e, Role role, std::string_view under) {
        Frame f;
        f.role = role;
        f.under = under;
        if (e.type() == dom::element_type::OBJECT) {
            const dom::object o = e.get_object().value_unsafe();
            f.is_object = true;
            f.oit = o.begin();
            f.oend = o.end();
            f.keys_from = keys_.size();
            f.size_hint = o.size();
        } else {
            const dom::array a = e.get_array().value_unsafe();
            f.ait = a.begin();
            f.aend = a.end();
        }
        stack_.push_back(std::move(f));
    }

    std::vector<IndexRecord>& records_;
    std::vector<Frame> stack_;
    std::vector<std::string_view> keys_;
};

// A small DOM value (the info object) in nlohmann's form, with an explicit
// stack (nesting is capped by the parser in any case).
nlohmann::json to_nlohmann(dom::element root) {
    struct Level {
        nlohmann::json* target;
        bool is_object;
        dom::object::iterator oit, oend;
        dom::array::iterator ait, aend;
    };
    std::vector<Level> stack;
    auto put = [&](dom::element e, nlohmann::json& target) {
        switch (e.type()) {
        case dom::element_type::OBJECT: {
            target = nlohmann::json::object();
            const dom::object o = e.get_object().value_unsafe();
            stack.push_back(Level{&target, true, o.begin(), o.end(), {}, {}});
            return;
        }
        case dom::element_type::ARRAY: {
            target = nlohmann::json::array();
            const dom::array a = e.get_array().value_unsafe();
            stack.push_back(Level{&target, false, {}, {}, a.begin(), a.end()});
            return;
        }
        case dom::element_type::STRING: target = std::string(e.get_string().value_unsafe()); return;
        case dom::element_type::INT64: target = e.get_int64().value_unsafe(); return;
        case dom::element_type::UINT64: target = e.get_uint64().value_unsafe(); return;
        case dom::element_type::DOUBLE: target = e.get_double().value_unsafe(); return;
        case dom::element_type::BOOL: target = e.get_bool().value_unsafe(); return;
        case dom::element_type::NULL_VALUE: target = nullptr; return;
        }
    };
    nlohmann::json out;
    put(root, out);
    while (!stack.empty()) {
        Level& l = stack.back();
        if (l.is_object ? l.oit == l.oend : l.ait == l.aend) {
            stack.pop_back();
            continue;
        }
        if (l.is_object) {
            const dom::key_value_pair kv = *l.oit;
            ++l.oit;
            nlohmann::json& slot = (*l.target)[std::string(kv.key)];
            put(kv.value, slot);  // may grow `stack`: `l` is not used after this
        } else {
            const dom::element e = *l.ait;
            ++l.ait;
            l.target->push_back(nullptr);
            put(e, l.target->back());
        }
    }
    return out;
}

// Parses the whole index into `data`: any JSON error, a depth past the cap,
// a repeated key anywhere, or a record of the wrong shape is INVALID.
void parse_index(IndexData& data, const std::atomic<bool>& cancelled) {
    check(data.parser.allocate(data.bytes.size(), max_json_depth));
    dom::element root;
    check(data.parser.parse(data.bytes).get(root));
    // A record takes well over 100 bytes of JSON: reserve once (pages
    // not written are never touched) instead of regrowing and copying.
    data.records.reserve(data.bytes.size() / 100 + 16);
    Walker(data.records).walk(root, cancelled);
    dom::element info;
    if (root["info"].get(info) != simdjson::SUCCESS || info.type() != dom::element_type::OBJECT)
        malformed("info is not a JSON object");
    data.info = to_nlohmann(info);
}

// ---- step 1: read and hash (and parse, see below) ------------------------

fs::OpenedFile open_index(int dirfd, const stdfs::path& path, std::uint64_t cap) {
    fs::OpenedFile f = fs::open_untrusted_at(dirfd, repodata_name, path);
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    if (size > cap) throw VerdictError(Verdict::Invalid, fmt::format("index is {} bytes, over the limit of {}", size, cap));
    return f;
}

// A hint, never required: back a large fresh buffer with huge pages, so
// that filling it takes a few hundred page faults instead of one per 4 KiB.
void advise_huge_pages(char* p, std::size_t n) noexcept {
    constexpr std::uintptr_t huge = std::uintptr_t{2} << 20;
    const auto from = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) & ~(huge - 1);
    const auto to = (reinterpret_cast<std::uintptr_t>(p) + n) & ~(huge - 1);
    if (to > from) (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_HUGEPAGE);
}

struct ReadIndex {
    Sha256Digest digest{};
    std::exception_ptr parse_failure;  // why the bytes are not a valid index
};

// Reads the whole index once into a private padded buffer; the calling
// thread hashes each chunk as soon as it has been read, so the digest is
// ready when the last byte arrives.
//
// Once every byte is in, the reading thread parses them while the hash
// finishes. This is safe because nothing parsed is used, trusted or even
// reported before the signature over the digest verifies: the parse writes
// only into `data` (private to this call) and `parse_failure`, and the caller
// looks at neither unless verify_digest said VALID; on any other verdict both
// are thrown away. The parser only ever sees at most the size cap, nests at
// most max_json_depth deep (its stack is fixed, not recursive), and is the
// same code that would parse the bytes after authentication. What it buys:
// the parse overlaps the hash instead of following it.
ReadIndex read_hash_parse(const fs::OpenedFile& f, IndexData& data) {
    const auto size = static_cast<std::size_t>(f.st.st_size);
    data.bytes = simdjson::padded_string(size);
    advise_huge_pages(data.bytes.data(), size);
    constexpr std::size_t done_flag = ~std::size_t{0};  // the reader stopped early (error)
    std::atomic<std::size_t> ready{0};
    std::atomic<bool> cancelled{false};
    int read_errno = 0;
    ReadIndex out;
    std::jthread reader([&] {
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::read(f.fd.get(), data.bytes.data() + done, std::min<std::size_t>(size - done, hash_chunk_bytes));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                read_errno = n < 0 ? errno : 0;
                ready.store(done_flag, std::memory_order_release);
                ready.notify_one();
                return;
            }
            done += static_cast<std::size_t>(n);
            ready.store(done, std::memory_order_release);
            ready.notify_one();
        }
        try {
            parse_index(data, cancelled);
        } catch (...) {
            out.parse_failure = std::current_exception();
        }
    });
    Sha256 h;
    std::size_t hashed = 0;
    while (hashed < size) {
        std::size_t r;
        while ((r = ready.load(std::memory_order_acquire)) == hashed) ready.wait(hashed, std::memory_order_acquire);
        if (r == done_flag) break;
        h.update({reinterpret_cast<const unsigned char*>(data.bytes.data() + hashed), r - hashed});
        hashed = r;
    }
    if (hashed != size) cancelled.store(true);
    reader.join();
    if (hashed != size) {
        if (read_errno != 0) throw std::system_error(read_errno, std::generic_category(), "read");
        throw std::runtime_error("file shrank while being read");
    }
    char extra;
    if (::read(f.fd.get(), &extra, 1) != 0) throw std::runtime_error("file grew while being read");
    out.digest = h.finish();
    return out;
}

// ---- step 2: the signature -----------------------------------------------

std::string time_or(const std::optional<SeenIndex>& s) { return s && !s->signed_at.empty() ? s->signed_at : "?"; }

// The channel that was seen signed at this location or under the expected id, if any.
std::optional<std::string> signed_before(const std::string& location, const std::string& subdir, StateStore& state,
                                         const ChannelPolicy& policy) {
    if (auto was = state.channel_at(location)) return was;
    if (policy.channel_id && state.seen(*policy.channel_id, subdir)) return policy.channel_id;
    return std::nullopt;
}

// MISSING_SIG for an index without repodata.json.sig; a downgrade when it was signed before.
VerdictError unsigned_index(const std::string& location, const std::string& subdir, StateStore& state,
                            const ChannelPolicy& policy) {
    if (auto was = signed_before(location, subdir, state, policy))
        return VerdictError(Verdict::MissingSig,
                            fmt::format("index is unsigned (no {}), but channel '{}' was signed here before: refusing "
                                        "the downgrade",
                                        repodata_sig_name, *was));
    return VerdictError(Verdict::MissingSig, fmt::format("index is not signed (no {})", repodata_sig_name));
}

// ---- step 3: the guard fields --------------------------------------------

Guard check_guard(const nlohmann::json& info, const std::string& subdir, const std::string& location,
                  StateStore& state, const ChannelPolicy& policy) {
    const std::string info_subdir = info.value("subdir", "");
    if (info_subdir != subdir)
        throw VerdictError(Verdict::Invalid, fmt::format("info.subdir is '{}', expected '{}'", info_subdir, subdir));
    if (!info.contains("guard")) throw VerdictError(Verdict::Invalid, "signed index has no info.guard");
    Guard g;
    try {
        g = Guard::from_json(info["guard"]);
    } catch (const std::invalid_argument& e) {
        throw VerdictError(Verdict::Invalid, e.what());
    }
    if (g.subdir != subdir)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("index is signed for subdir '{}', found in '{}'", g.subdir, subdir));
    if (policy.channel_id && g.channel != *policy.channel_id)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("index is for channel '{}', expected '{}'", g.channel, *policy.channel_id));
    if (auto was = state.channel_at(location); was && *was != g.channel)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("this location served channel '{}' before, now '{}' (reset with "
                                       "'conda-guard state reset {}')",
                                       *was, g.channel, *was));
    if (g.expires <= policy.now && !policy.allow_expired)
        throw VerdictError(Verdict::Expired, fmt::format("index expired at {} (signed {}, version {})",
                                                         format_time(g.expires), format_time(g.signed_at), g.version));
    return g;
}

// ---- step 4: what the state remembers ------------------------------------

void check_state(const Guard& g, const std::string& subdir, const std::string& hex, StateStore& state) {
    const auto seen = state.seen(g.channel, subdir);
    if (seen && g.version < seen->version)
        throw VerdictError(Verdict::Rollback, fmt::format("index version {} is older than version {} seen before (signed {})",
                                                          g.version, seen->version, time_or(seen)));
    if (seen && g.version == seen->version && !seen->sha256.empty() && seen->sha256 != hex)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("a different index with the same version {} was seen before", g.version));
}

// Authenticates and parses DIR/repodata.json, DIR open as `dirfd`.
// `remembered`: this subdir was seen signed at this location before.
VerifiedIndex verify_index_at(int dirfd, const stdfs::path& dir, const std::string& subdir,
                              const std::string& location, bool remembered, Verifier& verifier, StateStore& state,
                              const ChannelPolicy& policy) {
    VerifiedIndex out;
    const stdfs::path path = dir / repodata_name;
    const stdfs::path sig_path = dir / repodata_sig_name;
    Result& r = out.result;
    r.path = path.string();
    auto data = std::make_shared<IndexData>();
    guarded(r, [&] {
        fs::OpenedFile f;
        try {
            f = open_index(dirfd, path, policy.max_index_bytes);
        } catch (const fs::NotRegularFile& e) {
            if (e.kind() != fs::FileKind::Missing || !remembered) throw;
            throw VerdictError(Verdict::MissingSig,
                               fmt::format("index is missing, but subdir {} was signed here before", subdir));
        }
        if (fs::kind_at(dirfd, repodata_sig_name) == fs::FileKind::Missing)
            throw unsigned_index(location, subdir, state, policy);
        const ReadIndex read = read_hash_parse(f, *data);
        r = verifier.verify_digest(read.digest, sig_path, path.string());
        if (r.verdict != Verdict::Valid) return;
        // The bytes are authentic: only now is what was parsed looked at.
        if (read.parse_failure) std::rethrow_exception(read.parse_failure);
        Guard g = check_guard(data->info, subdir, location, state, policy);
        const std::string hex = to_hex(read.digest);
        check_state(g, subdir, hex, state);
        state.record(location, g.channel, subdir, SeenIndex{g.version, hex, format_time(g.signed_at)});
        r.reason = fmt::format("channel '{}' version {}, expires {}{}; signed by {} ({})", g.channel, g.version,
                               format_time(g.expires),
                               g.expires <= policy.now ? " (EXPIRED, accepted by --allow-expired)" : "",
                               r.key.value_or("?"), r.fingerprint.value_or("?"));
        out.guard = std::move(g);
        out.data = std::move(data);
    });
    if (r.verdict != Verdict::Valid) {
        out.data.reset();
        out.guard.reset();
    }
    return out;
}

}  // namespace

VerifiedIndex verify_index(const stdfs::path& dir, const std::string& subdir, const std::string& location,
                           Verifier& verifier, StateStore& state, const ChannelPolicy& policy) {
    fs::Fd dirfd;
    VerifiedIndex out;
    out.result.path = (dir / repodata_name).string();
    guarded(out.result, [&] { dirfd = fs::open_dir(dir); });
    if (!dirfd) return out;
    const auto remembered = state.subdirs_at(location);
    return verify_index_at(dirfd.get(), dir, subdir, location,
                           std::find(remembered.begin(), remembered.end(), subdir) != remembered.end(), verifier,
                           state, policy);
}

namespace {

// ---- verify_channel: which subdirs, and what each one is -----------------

// The subdirs to check: every one this location was seen signed with, and
// every entry of the directory with a subdir's name that is a directory
// holding a repodata.json or a symbolic link (refused below, never skipped).
std::set<std::string> subdirs_to_check(int rootfd, const stdfs::path& channel, const std::vector<std::string>& remembered) {
    std::set<std::string> names(remembered.begin(), remembered.end());
    for (const auto& name : fs::list_dir(rootfd, channel.string())) {
        if (!is_subdir_name(name)) continue;
        const fs::FileKind k = fs::kind_at(rootfd, name);
        if (k == fs::FileKind::Symlink) names.insert(name);
        if (k == fs::FileKind::Directory && fs::kind_at(rootfd, name + "/" + repodata_name) != fs::FileKind::Missing)
            names.insert(name);
    }
    return names;
}

// The finding for a subdir that cannot be opened as a directory of its own.
Result unusable_subdir(const stdfs::path& channel, const std::string& name, fs::FileKind kind, bool remembered,
                       const std::optional<std::string>& channel_id) {
    const std::string before =
        remembered ? fmt::format("; channel '{}' was signed here before", channel_id.value_or("?")) : std::string();
    Result r{.path = (channel / name / repodata_name).string()};
    if (kind == fs::FileKind::Missing) {
        // Gone: nothing signs it any more, as with a removed signature.
        r.verdict = Verdict::MissingSig;
        r.reason = fmt::format("subdir {} is gone{}", name, before);
    } else {
        // Something in its place that is not the subdir: not a missing signature but a wrong object.
        r.verdict = Verdict::Invalid;
        r.reason = kind == fs::FileKind::Symlink
                       ? fmt::format("subdir {} is a symbolic link (subdirs are never followed){}", name, before)
                       : fmt::format("subdir {} is {}, not a directory{}", name, fs::describe(kind), before);
    }
    return r;
}

Result check_package(const stdfs::path& dir, const std::string& subdir, const IndexRecord& rec, Verifier& verifier) {
    const std::string fn(rec.fn);
    const stdfs::path path = dir / fn;
    Result r{.path = path.string()};
    auto invalid = [](const std::string& why) { return VerdictError(Verdict::Invalid, why); };
    guarded(r, [&] {
        const auto name = parse_package_file_name(fn);
        if (!name) throw invalid("record key is not a package file name");
        if (rec.name != name->name || rec.version != name->version || rec.build != name->build)
            throw invalid("record's name, version or build disagrees with the file name");
        if (rec.sha256.empty()) throw invalid("record has no sha256 (md5-only records are refused)");
        if (!rec.has_size) throw invalid("record has no size");
        const auto trusted = trusted_record_from_hex(rec.size, rec.sha256, rec.md5);
        if (!trusted) throw invalid("record's sha256 or md5 is not a hex digest");
        fs::OpenedFile f;
        try {
            f = fs::open_untrusted(path);
        } catch (const fs::NotRegularFile& e) {
            if (e.kind() != fs::FileKind::Missing) throw;
            throw VerdictError(Verdict::Error, "listed in the signed index but missing");
        }
        // Never decompressed before its size and digests match the record.
        const PackageScan scan = scan_trusted_package(f.fd.get(), *name, *trusted);
        if (!scan.index_json) throw invalid("archive has no info/index.json");
        if (auto why = identity_mismatch(*scan.index_json, *name, subdir)) throw invalid(*why);
        stdfs::path sig = path;
        sig += ".sig";
        r = verifier.verify_digest(scan.sha256, sig, path.string());
    });
    return r;
}

}  // namespace

ChannelReport verify_channel(const stdfs::path& channel, Verifier& verifier, StateStore& state,
                             const ChannelPolicy& policy) {
    fs::Fd root;
    try {
        root = fs::open_dir(channel);
    } catch (const std::system_error& e) {
        throw std::runtime_error(channel.string() + ": not a directory (" + e.code().message() + ")");
    }
    const std::string location = stdfs::weakly_canonical(stdfs::absolute(channel)).string();
    const std::vector<std::string> remembered = state.subdirs_at(location);
    const std::set<std::string> subdirs = subdirs_to_check(root.get(), channel, remembered);
    if (subdirs.empty()) throw std::runtime_error(channel.string() + ": no SUBDIR/repodata.json here");
    const auto channel_here = state.channel_at(location);
    ChannelReport report;
    for (const auto& s : subdirs) {
        const bool was_signed = std::find(remembered.begin(), remembered.end(), s) != remembered.end();
        SubdirFindings& found = report.subdirs.emplace_back(SubdirFindings{s, {}, {}});
        fs::OpenedDir d = fs::open_dir_at(root.get(), s);
        if (!d.fd) {
            found.index = unusable_subdir(channel, s, d.kind, was_signed, channel_here);
            continue;
        }
        VerifiedIndex idx = verify_index_at(d.fd.get(), channel / s, s, location, was_signed, verifier, state, policy);
        found.index = idx.result;
        if (idx.result.verdict != Verdict::Valid || policy.index_only) continue;
        std::vector<IndexRecord> recs(idx.records().begin(), idx.records().end());
        std::sort(recs.begin(), recs.end(), [](const auto& a, const auto& b) { return a.fn < b.fn; });
        std::vector<Result> pkg(recs.size());
        parallel_for(recs.size(), policy.jobs,
                     [&](std::size_t i) { pkg[i] = check_package(channel / s, s, recs[i], verifier); });
        found.packages = std::move(pkg);
    }
    return report;
}

}  // namespace condaguard
