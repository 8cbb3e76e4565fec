#include <condaguard/install/gate.hpp>

#include <condaguard/channel/layout.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/install/pkgs_dir.hpp>
#include <condaguard/package/archive.hpp>
#include <condaguard/package/extract.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/text.hpp>
#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/verifier.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <cerrno>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <numeric>
#include <queue>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {

namespace {

namespace stdfs = std::filesystem;

constexpr std::size_t max_validators_bytes = 64 << 10;
// A record's timestamp above this is in milliseconds (conda's rule).
constexpr std::int64_t max_seconds_timestamp = 253402300799;

VerdictError invalid(const std::string& why) { return VerdictError(Verdict::Invalid, why); }

std::string short_hash(std::string_view s) { return to_hex(sha256_bytes(s)).substr(0, 16); }

// A file we create inside a directory of our own (O_EXCL, O_NOFOLLOW).
fs::Fd create_at(int dirfd, const std::string& name, const std::string& display) {
    ::unlinkat(dirfd, name.c_str(), 0);
    fs::Fd fd = fs::open_at_raw(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (!fd) throw fs::errno_error("create " + display);
    return fd;
}

void rename_at(int dirfd, const std::string& from, const std::string& to) {
    if (::renameat(dirfd, from.c_str(), dirfd, to.c_str()) != 0) throw fs::errno_error("rename " + to);
}

void remove_at(int dirfd, const std::string& name) {
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) throw fs::errno_error("remove " + name);
}

// ---- keys: revocation and the channel's allowed keys -----------------------

// Revoked keys are refused before anything else is looked at; the allowed
// list is applied to a good signature (UNTRUSTED_KEY otherwise).
class KeyJudge {
public:
    KeyJudge(const KeyStore& store, const GateOptions& o) : store_(store), options_(o) {}

    // Throws VerdictError(BadKey) when the key `sig` names is revoked.
    void refuse_revoked(const SigFile& sig) {
        if (!options_.revoked) return;
        const std::string fp = fingerprint(sig.key);
        if (fp.empty()) return;  // unusable keys get their verdict from the verifier
        if (auto why = revoked_key_reason(options_.revoked, sig.key.str(), fp))
            throw VerdictError(Verdict::BadKey, *why);
    }

private:
    std::string fingerprint(const KeyName& name) {
        std::lock_guard lock(mutex_);
        auto it = fingerprints_.find(name.str());
        if (it == fingerprints_.end()) {
            std::string fp;
            try {
                fp = store_.load_public(name).fingerprint();
            } catch (const VerdictError&) {
            }
            it = fingerprints_.emplace(name.str(), fp).first;
        }
        return it->second;
    }
    const KeyStore& store_;
    const GateOptions& options_;
    std::mutex mutex_;
    std::map<std::string, std::string> fingerprints_;
};

// A downloaded .sig's text (the transfer capped it at 4 KiB).
std::string read_sig_text(int fd, const std::string& display) {
    if (::lseek(fd, 0, SEEK_SET) != 0) throw fs::errno_error("seek " + display);
    const fs::CappedRead read = fs::read_capped(fd, max_sig_file_bytes, display);
    if (read.too_big) throw VerdictError(Verdict::BadSigFile, fmt::format("over {} bytes", max_sig_file_bytes));
    return read.data;
}

// Indexes of packages ready for steps 4 to 6, handed from the transfer loop
// to the worker threads, the costliest first (see extraction_cost).
class WorkQueue {
public:
    void push(std::size_t i, std::uint64_t cost) {
        {
            std::lock_guard l(mutex_);
            items_.push(Item{.cost = cost, .index = i});
        }
        cv_.notify_one();
    }
    // The next item; false once the queue is closed and empty.
    bool pop(std::size_t& i) {
        std::unique_lock l(mutex_);
        cv_.wait(l, [&] { return closed_ || !items_.empty(); });
        if (items_.empty()) return false;
        i = items_.top().index;
        items_.pop();
        return true;
    }
    void close() {
        {
            std::lock_guard l(mutex_);
            closed_ = true;
        }
        cv_.notify_all();
    }
    struct Closer {
        WorkQueue& queue;
        ~Closer() { queue.close(); }
    };

private:
    struct Item {
        std::uint64_t cost;
        std::size_t index;
        // Costlier first; of equal cost, the earlier package first.
        bool operator<(const Item& o) const { return cost != o.cost ? cost < o.cost : index > o.index; }
    };
    std::mutex mutex_;
    std::condition_variable cv_;
    std::priority_queue<Item> items_;
    bool closed_ = false;
};

// Early writeback: while the workers extract, the package directory's file
// system is synced in the background each time a package was extracted
// since the last sync, so that the one sync before anything is published
// (PackageDir::sync) has little left to write. Syncing waits on the disk,
// not the CPU the workers use. Its errors are ignored here, and must not be
// lost to that sync: syncfs reports a write error once per open file
// description, so this one syncs through its own (a dup would share the
// package directory's), never through the one PackageDir::sync uses.
class Writeback {
public:
    explicit Writeback(int dirfd)
        : fd_(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)),
          thread_([this](std::stop_token stop) { loop(stop); }) {}
    void kick() {
        {
            std::lock_guard l(mutex_);
            pending_ = true;
        }
        cv_.notify_one();
    }

private:
    void loop(std::stop_token stop) {
        std::unique_lock l(mutex_);
        while (cv_.wait(l, stop, [&] { return pending_; })) {
            pending_ = false;
            l.unlock();
            if (fd_) (void)::syncfs(fd_.get());  // none opened: no early writeback, the final sync does it all
            l.lock();
        }
    }
    const fs::Fd fd_;  // its own open file description (see above)
    std::mutex mutex_;
    std::condition_variable_any cv_;
    bool pending_ = false;
    std::jthread thread_;  // last: stopped and joined before the rest goes
};

// Where a channel is, as the state remembers it: the URL without
// credentials, scheme and host in lower case, no trailing '/', so that one
// channel written two ways is one location (a downgrade is seen either way).
std::string channel_location(const std::string& channel_url) {
    if (auto u = parse_url(channel_url)) return u->without_credentials();
    return redact_url(channel_url);
}

// ---- step 1: the signed indexes --------------------------------------------

struct IndexKey {
    std::string channel_url;  // with credentials
    std::string subdir;
    auto operator<=>(const IndexKey&) const = default;
};

struct Validators {
    std::string etag, last_modified;
    bool zst = true;  // try repodata.json.zst until the channel is seen without it
};

constexpr const char* validators_name = "validators.json";
constexpr const char* zst_suffix = ".zst";

Validators read_validators(int dirfd, const stdfs::path& dir) {
    Validators v;
    try {
        const fs::OpenedFile f = fs::open_untrusted_at(dirfd, validators_name, dir / validators_name);
        const nlohmann::json j = read_json(f.fd.get(), {.max_bytes = max_validators_bytes}, validators_name);
        v.etag = j.value("etag", "");
        v.last_modified = j.value("last_modified", "");
        v.zst = j.value("zst", true);
    } catch (const std::exception&) {
        // No validators (or damaged ones): fetch in full. The index itself is verified either way.
    }
    return v;
}

void write_validators(int dirfd, const stdfs::path& dir, const Validators& v) {
    const nlohmann::json j{{"etag", v.etag}, {"last_modified", v.last_modified}, {"zst", v.zst}};
    fs::write_atomic_at(dirfd, validators_name, j.dump(), 0600, false, dir / validators_name);
}

struct IndexSlot {
    IndexKey key;
    stdfs::path dir;
    fs::Fd dirfd;
    Validators validators;
    fs::Fd body, sig;
    // The policy allows this channel unsigned: no .sig is asked for.
    std::optional<ChannelTrust::Unsigned> unsigned_by_policy;
    std::size_t body_request = 0, sig_request = 0;  // in the first transfer (sig_request: signed only)
    bool fetch_failed = false;
    std::string failure;
    VerifiedIndex index;
    std::map<std::string, const IndexRecord*, std::less<>> by_fn;
};

std::string index_display(const IndexKey& k) {
    return fmt::format("{}/{}/{}", redact_url(k.channel_url), k.subdir, repodata_name);
}

FetchRequest index_request(const IndexSlot& s, bool zst, std::uint64_t cap) {
    FetchRequest r{.url = fmt::format("{}/{}/{}{}", s.key.channel_url, s.key.subdir, repodata_name, zst ? zst_suffix : ""),
              .sink_fd = s.body.get(),
              .max_bytes = cap,
              .encoding = zst ? BodyEncoding::Zstd : BodyEncoding::Identity};
    // Validators belong to the form they were given for.
    if (zst == s.validators.zst) {
        if (!s.validators.etag.empty()) r.if_none_match = s.validators.etag;
        if (!s.validators.last_modified.empty() && !zst) r.if_modified_since = s.validators.last_modified;
    }
    return r;
}

// Step 1 for a channel the policy allows unsigned: read, not authenticated,
// unless the channel was seen signed at this location (a downgrade).
void read_index_unsigned_by_policy(IndexSlot& s, const ChannelPolicy& policy, StateStore& state) {
    const ChannelTrust::Unsigned& rule = *s.unsigned_by_policy;
    Result& r = s.index.result;
    const std::string location = channel_location(s.key.channel_url);
    const auto subdirs = state.subdirs_at(location);
    const auto was = state.channel_at(location);
    if (was || std::find(subdirs.begin(), subdirs.end(), s.key.subdir) != subdirs.end()) {
        r = Result{.path = index_display(s.key),
                   .verdict = Verdict::MissingSig,
                   .reason = fmt::format(
                       "the policy's rule for {} ({}) allows this channel unsigned, but {} was signed at this "
                       "location before: refusing the downgrade (if it really stopped signing, forget it with {})",
                       condaguard::quoted(rule.rule), rule.source,
                       was ? fmt::format("channel {}", condaguard::quoted(*was)) : std::string("it"),
                       was ? fmt::format("'conda-guard state reset {}'", *was)
                           : std::string("'conda-guard state reset CHANNEL_ID'; 'conda-guard state show' lists them"))};
        return;
    }
    s.index = read_unsigned_index(s.dir, s.key.subdir, policy);
    r.path = index_display(s.key);
    if (r.verdict != Verdict::Valid) return;
    r.verdict = Verdict::Unverified;
    r.reason = fmt::format("index not authenticated: the policy's rule for {} ({}) allows this channel unsigned "
                           "(signatures: none); no signature was fetched",
                           condaguard::quoted(rule.rule), rule.source);
    for (const IndexRecord& rec : s.index.records()) s.by_fn.emplace(std::string(rec.fn), &rec);
}

// Fetches every index and its .sig into the private cache (conditional
// requests; .zst first where the channel offers it), then verifies each.
void load_indexes(std::map<IndexKey, IndexSlot>& slots, const GateOptions& o, Fetcher& fetcher, KeyJudge& judge, const KeyStore& store, StateStore& state, const Environment& env) {
    std::vector<IndexSlot*> order;
    for (auto& [k, s] : slots) {
        order.push_back(&s);
        // By the URL as sent: one channel under two credentials may be served two indexes.
        s.dir = o.index_cache / short_hash(k.channel_url) / k.subdir;
        stdfs::create_directories(s.dir);
        s.dirfd = fs::open_dir(s.dir);
        s.validators = read_validators(s.dirfd.get(), s.dir);
        s.unsigned_by_policy = o.trust_for(channel_location(k.channel_url)).unsigned_by_policy;
        s.body = create_at(s.dirfd.get(), std::string(repodata_name) + ".part", s.dir.string());
        if (!s.unsigned_by_policy)
            s.sig = create_at(s.dirfd.get(), std::string(repodata_sig_name) + ".part", s.dir.string());
    }
    std::vector<FetchRequest> reqs;
    for (auto* s : order) {
        s->body_request = reqs.size();
        reqs.push_back(index_request(*s, s->validators.zst, o.max_index_bytes));
        if (s->unsigned_by_policy) continue;
        s->sig_request = reqs.size();
        reqs.push_back(FetchRequest{.url = fmt::format("{}/{}/{}", s->key.channel_url, s->key.subdir, repodata_sig_name),
                               .sink_fd = s->sig.get(),
                               .max_bytes = max_sig_file_bytes,
                               .same_origin_only = true});
    }
    std::vector<FetchResponse> got = fetcher.fetch(reqs);
    // A channel without repodata.json.zst: once more, plain.
    std::vector<FetchRequest> retry;
    std::vector<IndexSlot*> retried;
    for (std::size_t i = 0; i < order.size(); ++i) {
        IndexSlot& s = *order[i];
        if (s.validators.zst && got[s.body_request].outcome == FetchOutcome::NotFound) {
            s.validators = Validators{.zst = false};
            if (::ftruncate(s.body.get(), 0) != 0) throw fs::errno_error("truncate");
            retry.push_back(index_request(s, false, o.max_index_bytes));
            retried.push_back(&s);
        }
    }
    std::vector<FetchResponse> again = retry.empty() ? std::vector<FetchResponse>{} : fetcher.fetch(retry);
    for (std::size_t i = 0; i < order.size(); ++i) {
        IndexSlot& s = *order[i];
        const int d = s.dirfd.get();
        FetchResponse body = got[s.body_request];
        for (std::size_t j = 0; j < retried.size(); ++j)
            if (retried[j] == &s) body = again[j];
        const std::string part = std::string(repodata_name) + ".part";
        const std::string sig_part = std::string(repodata_sig_name) + ".part";
        switch (body.outcome) {
        case FetchOutcome::Ok:
            rename_at(d, part, repodata_name);
            s.validators.etag = body.etag;
            s.validators.last_modified = body.last_modified;
            write_validators(d, s.dir, s.validators);
            break;
        case FetchOutcome::NotModified:
            remove_at(d, part);
            break;
        default:
            remove_at(d, part);
            s.fetch_failed = true;
            s.failure = body.outcome == FetchOutcome::TooLarge
                            ? fmt::format("index is over the limit of {} bytes", o.max_index_bytes)
                            : fmt::format("index could not be fetched: {}", body.reason);
        }
        if (s.unsigned_by_policy) {
            // No .sig was asked for; one kept from an earlier run is not this index's.
            remove_at(d, repodata_sig_name);
            continue;
        }
        const FetchResponse& sig = got[s.sig_request];
        if (sig.outcome == FetchOutcome::Ok) {
            rename_at(d, sig_part, repodata_sig_name);
        } else {
            remove_at(d, sig_part);
            // Not found: the index is unsigned now, and verify_index says so
            // (a downgrade when it was signed before). Any other failure
            // stops here, without judging from an old copy.
            remove_at(d, repodata_sig_name);
            if (sig.outcome != FetchOutcome::NotFound && !s.fetch_failed) {
                s.fetch_failed = true;
                s.failure = fmt::format("{} could not be fetched: {}", repodata_sig_name, sig.reason);
            }
        }
    }
    for (auto* s : order) {
        const ChannelTrust trust = o.trust_for(channel_location(s->key.channel_url));
        Result& r = s->index.result;
        if (s->fetch_failed) {
            r = Result{.path = index_display(s->key), .verdict = Verdict::Error, .reason = s->failure};
            continue;
        }
        ChannelPolicy policy{.channel_id = trust.channel_id, .max_index_bytes = o.max_index_bytes, .now = env.now()};
        if (s->unsigned_by_policy) {
            read_index_unsigned_by_policy(*s, policy, state);
            continue;
        }
        Verifier verifier(store);
        Result pre{.path = index_display(s->key)};
        guarded(pre, [&] {
            if (fs::kind_at(s->dirfd.get(), repodata_sig_name) == fs::FileKind::Regular)
                judge.refuse_revoked(read_sig_file_at(s->dirfd.get(), repodata_sig_name, index_display(s->key) + ".sig"));
            pre.verdict = Verdict::Valid;
        });
        if (pre.verdict != Verdict::Valid) {
            r = pre;
            continue;
        }
        const std::string location = channel_location(s->key.channel_url);
        s->index = verify_index(s->dir, s->key.subdir, location, verifier, state, policy);
        if (r.verdict == Verdict::MissingSig &&
            fs::kind_at(s->dirfd.get(), repodata_name) == fs::FileKind::Regular) {
            // Unsigned: a refused downgrade when it was seen signed, else the policy's call.
            const auto subdirs = state.subdirs_at(location);
            const bool seen_signed =
                state.channel_at(location) ||
                std::find(subdirs.begin(), subdirs.end(), s->key.subdir) != subdirs.end() ||
                (trust.channel_id && state.seen(*trust.channel_id, s->key.subdir));
            if (trust.index_required)
                r.reason += "; the policy requires a signed index for this channel";
            else if (!seen_signed)
                s->index = read_unsigned_index(s->dir, s->key.subdir, policy);
        }
        r.path = index_display(s->key);
        apply_allowed_keys(r, trust);
        if (r.verdict == Verdict::Valid && o.max_index_age && s->index.guard &&
            s->index.guard->signed_at + *o.max_index_age < env.now()) {
            r.verdict = Verdict::Expired;
            r.reason = fmt::format("index was signed {}, longer ago than the policy's max_index_age",
                                   format_time(s->index.guard->signed_at));
        }
        if (r.verdict != Verdict::Valid) continue;
        for (const IndexRecord& rec : s->index.records()) s->by_fn.emplace(std::string(rec.fn), &rec);
    }
}

// ---- steps 2 to 6: one package ---------------------------------------------

struct Job {
    const PackageUrl* url = nullptr;
    IndexSlot* index = nullptr;
    const IndexRecord* record = nullptr;
    TrustedRecord trusted;
    Result result;
    bool refused = false;  // a verdict was reached before any transfer
    // The verified bytes: a package directory's copy, or a download into staging.
    bool cached = false;
    std::optional<Staging> staging;
    fs::Fd archive, sig;
    std::string sig_text;  // the .sig, as it was fetched or found
    // Its transfers: the archive's (not for a cached copy) and the channel's
    // .sig (signed channels only, cached copy or not).
    std::optional<std::size_t> archive_request, sig_request;
    // Steps 3 to 5 passed: `result` is the signature's verdict,
    // `record_json` the repodata_record.json to write, and the staged folder
    // waits for placing.
    bool ready = false;
    std::string record_json;
    std::string placed;  // the folder, once placed
    std::vector<std::string> cleaned;  // claimants moved out of a package directory
    // Placed from a channel unsigned by policy: `result` stays VALID through
    // the claimant checks that follow placing, as for a signed package, and
    // becomes UNVERIFIED when the report is made.
    bool unverified = false;

    bool is_unsigned() const { return index->unsigned_by_policy.has_value(); }
};

// Roughly what extracting a package costs, to order the work: the bytes to
// decompress, a .tar.bz2's counted eight times a .conda's (bzip2 decodes
// about ten times slower than the zstd inside a .conda).
std::uint64_t extraction_cost(const Job& j) {
    return j.trusted.size * (j.url->fn.ends_with(".tar.bz2") ? 8 : 1);
}

std::string record_json(const Job& j, const nlohmann::json& index_json) {
    nlohmann::json rec = parse_json(j.record->raw, {.max_bytes = j.record->raw.size() + 1});
    for (auto& [k, v] : index_json.items())
        if (!rec.contains(k)) rec[k] = v;
    rec["fn"] = j.url->fn;
    rec["url"] = redact_url(j.url->url);
    rec["channel"] = redact_url(j.url->channel_url) + "/" + j.url->subdir;
    rec["subdir"] = j.url->subdir;
    return rec.dump();
}

// An UNVERIFIED package's reason: what allowed it, and what was checked.
std::string unverified_reason(const ChannelTrust::Unsigned& rule, std::string_view checked) {
    return fmt::format("not authenticated: the policy's rule for {} ({}) allows this channel unsigned (signatures: "
                       "none); {}",
                       condaguard::quoted(rule.rule), rule.source, checked);
}

// The rule behind an UNVERIFIED verdict, for the report.
std::optional<std::string> unverified_rule(const Job& j) {
    if (j.result.verdict != Verdict::Unverified || !j.is_unsigned()) return std::nullopt;
    return j.index->unsigned_by_policy->rule;
}

// The record's timestamp in seconds (the index walk read it; conda's rule:
// above 253402300799 it is in milliseconds); none past INT64_MAX.
std::optional<std::int64_t> record_timestamp(const IndexRecord& rec) {
    if (!rec.has_timestamp || rec.timestamp > std::uint64_t{INT64_MAX}) return std::nullopt;
    const auto t = static_cast<std::int64_t>(rec.timestamp);
    return t > max_seconds_timestamp ? t / 1000 : t;
}

// Hashes `fd` from its start, reading at most record.size + 1 bytes, and
// writes what it hashed to `copy`.
bool same_bytes(int fd, const TrustedRecord& record, int copy) {
    if (::lseek(fd, 0, SEEK_SET) != 0) throw fs::errno_error("seek");
    Sha256 h;
    std::vector<unsigned char> buf(1 << 20);
    std::uint64_t total = 0;
    for (;;) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw fs::errno_error("read");
        if (n == 0) break;
        total += static_cast<std::uint64_t>(n);
        if (total > record.size) return false;
        h.update({buf.data(), static_cast<std::size_t>(n)});
        fs::write_all(copy, {reinterpret_cast<const char*>(buf.data()), static_cast<std::size_t>(n)}, "copy");
    }
    return total == record.size && h.finish() == record.sha256;
}

// The extracted folder's info/index.json (read through the folder's
// descriptor, never following a link).
nlohmann::json extracted_index_json(int folder_fd) {
    const fs::OpenedDir info = fs::open_dir_at(folder_fd, "info");
    if (!info.fd) throw invalid("archive has no info/ folder");
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(info.fd.get(), "index.json", "info/index.json");
    } catch (const fs::NotRegularFile& e) {
        throw invalid(fmt::format("archive's info/index.json {}", e.what()));
    }
    nlohmann::json j;
    try {
        j = read_json(f.fd.get(), {.max_bytes = max_index_json_bytes}, "info/index.json");
    } catch (const JsonError& e) {
        throw invalid(fmt::format("archive's info/index.json: {}", e.what()));
    }
    if (!j.is_object()) throw invalid("archive's info/index.json is not a JSON object");
    return j;
}

// Step 2: the signed record, and what the URL and the policy say about it.
void check_record(Job& j, const GateOptions& o, const Environment& env) {
    const Result& ir = j.index->index.result;
    if (ir.verdict != Verdict::Valid && !(ir.verdict == Verdict::Unverified && j.is_unsigned()))
        throw VerdictError(ir.verdict,
                           fmt::format("its index {} is {}: {}", ir.path, to_string(ir.verdict), ir.reason));
    const auto it = j.index->by_fn.find(j.url->fn);
    if (it == j.index->by_fn.end()) throw invalid(fmt::format("not in the signed index {}", ir.path));
    j.record = it->second;
    const IndexRecord& rec = *j.record;
    if (rec.name != j.url->name.name || rec.version != j.url->name.version || rec.build != j.url->name.build)
        throw invalid("the signed record's name, version or build disagrees with the file name");
    if (rec.sha256.empty()) throw invalid("the signed record has no sha256 (md5-only records are refused)");
    if (!rec.has_size) throw invalid("the signed record has no size");
    const auto trusted = trusted_record_from_hex(rec.size, rec.sha256, rec.md5);
    if (!trusted) throw invalid("the signed record's sha256 or md5 is not a hex digest");
    j.trusted = *trusted;
    if (j.url->sha256 && *j.url->sha256 != to_hex(j.trusted.sha256))
        throw invalid("the #sha256 given with the URL disagrees with the signed record");
    if (j.url->md5 && (!j.trusted.md5 || *j.url->md5 != to_hex(*j.trusted.md5)))
        throw invalid("the #md5 given with the URL disagrees with the signed record");
    if (o.min_age) {
        if (!j.index->index.guard)
            throw invalid("the policy's min_age needs a signed record's timestamp, and this index is not signed");
        const auto ts = record_timestamp(rec);
        if (!ts) throw invalid("the policy's min_age needs a timestamp, and the signed record has none");
        const auto published = TimePoint(std::chrono::seconds(*ts));
        if (published + *o.min_age > env.now())
            throw invalid(fmt::format("published {}, younger than the policy's min_age", format_time(published)));
    }
}

// Step 3 for a copy already in a package directory: used only when its bytes
// equal the record's. What was hashed is copied into staging as it is read,
// and only that private copy is used: the file itself may be rewritten in
// place by whoever owns it. A FN.sig beside it is never used: it may be
// another channel's (signed by a key this channel does not allow), so the
// channel's own .sig is fetched for a cached copy as for a download.
bool find_cached(Job& j, std::vector<std::optional<PackageDir>>& dirs) {
    for (auto& d : dirs) {
        if (!d) continue;
        const CachedEntry e = d->inspect(j.url->fn);
        if (e.archive != fs::FileKind::Regular) continue;
        const fs::OpenedFile f = d->open_cached_tarball(j.url->fn);
        fs::Fd copy = j.staging->new_archive_file();
        if (!same_bytes(f.fd.get(), j.trusted, copy.get())) continue;
        j.archive = std::move(copy);
        j.cached = true;
        return true;
    }
    return false;
}

// Where a NotFound came from: "on the server (HTTP 404)", or for file://
// (no HTTP status) "in the channel folder".
std::string not_found_where(const FetchResponse& r) {
    return r.http_status != 0 ? fmt::format("on the server (HTTP {})", r.http_status) : "in the channel folder";
}

// Step 3 for a download: what the transfer loop brought.
void check_download(const Job& j, const FetchResponse& body) {
    const char* record = j.is_unsigned() ? "unsigned index record" : "signed record";
    if (body.outcome == FetchOutcome::TooLarge)
        throw invalid(fmt::format("download is larger than the {}'s size", record));
    if (body.outcome == FetchOutcome::NotFound)
        throw VerdictError(Verdict::Error, "not " + not_found_where(body));
    if (body.outcome != FetchOutcome::Ok) throw VerdictError(Verdict::Error, "download failed: " + body.reason);
    if (body.bytes != j.trusted.size)
        throw invalid(fmt::format("download is {} bytes, the {} says {}", body.bytes, record, j.trusted.size));
    if (body.sha256 != j.trusted.sha256) throw invalid(fmt::format("sha256 of the download does not match the {}", record));
}

// The channel's FN.sig, as the transfer loop brought it (signed channels only).
void check_sig_download(const Job& j, const FetchResponse& sig) {
    const std::string& fn = j.url->fn;
    if (sig.outcome == FetchOutcome::NotFound)
        throw VerdictError(Verdict::MissingSig, fmt::format("no {}.sig {}", fn, not_found_where(sig)));
    if (sig.outcome == FetchOutcome::TooLarge)
        throw VerdictError(Verdict::BadSigFile, fmt::format("{}.sig is over {} bytes", fn, max_sig_file_bytes));
    if (sig.outcome != FetchOutcome::Ok)
        throw VerdictError(Verdict::Error, fmt::format("{}.sig could not be fetched: {}", fn, sig.reason));
}

// Folders that claim a package, in every package directory: conda links any
// top-level folder of any of them whose info/ matches the record
// (conda-plugin spec §4), so every one but the folder the gate places must
// leave the top level before conda runs. Shared by the worker threads; one
// package is cleared at a time.
class Claimants {
public:
    // dirs[0] is the target, locked by `target_lock`; the others are locked
    // here on first need (and kept locked to the end of the run).
    Claimants(const std::vector<std::optional<PackageDir>>& dirs, const PackageDirLock& target_lock)
        : dirs_(dirs), target_lock_(target_lock), locks_(dirs.size()), unusable_(dirs.size()) {}
    Claimants(const Claimants&) = delete;
    Claimants& operator=(const Claimants&) = delete;
    // A run stopped by an exception leaves every folder it held where it was.
    ~Claimants() { restore(); }

    // Moves every top-level folder that claims `pkg`, in every package
    // directory, out of the top level (into that directory's
    // .condaguard/staging, then deleted without following a link), except
    // `keep` in the target (place() replaces it). Returns their paths. In
    // this order, so that a refusal leaves every directory as it was:
    //  1. find them all; .condaguard claiming refuses (it is never removed,
    //     and conda would link it);
    //  2. lock every directory that holds one and make its staging folder
    //     there: a directory that cannot be locked or written refuses here,
    //     before anything has moved;
    //  3. move each with one rename (a link is moved as a link, never
    //     followed; conda skips links, so find_claimants never names one);
    //     one that cannot be moved (EACCES of a read-only directory whose
    //     .condaguard was writable, a foreign folder...) puts back those
    //     already moved and refuses: all or none.
    // With Hold::Yes the folders moved out stay in their staging folders
    // until commit() deletes them or restore() puts every one held back, so
    // that a later refusal in the same run can undo the clearing of earlier
    // packages; with Hold::No they are deleted before clear() returns.
    // Throws VerdictError(Error) naming the folder and its directory.
    enum class Hold { No, Yes };
    std::vector<std::string> clear(const PackageName& pkg, const std::string& keep, Hold hold = Hold::No) {
        std::lock_guard guard(mutex_);
        struct Found {
            std::size_t dir;
            std::string name;
            std::optional<std::string> aside;
        };
        std::vector<Found> found;
        if (scans_.empty()) throw std::logic_error("claimants cleared before the package directories were scanned");
        for (std::size_t i = 0; i < dirs_.size(); ++i) {
            if (!dirs_[i]) continue;
            for (auto& name : scans_[i].claimants(pkg)) {
                if (i == 0 && name == keep) continue;
                // Read again: it may have gone or changed since the scan.
                if (!dirs_[i]->claims(name, pkg)) continue;
                if (name == ".condaguard" || name == "urls.txt")
                    throw refusal(i, name, "and the gate never removes its own folder or conda's urls.txt");
                found.push_back(Found{.dir = i, .name = std::move(name)});
            }
        }
        std::vector<std::unique_ptr<Staging>> staging(dirs_.size());
        for (const Found& f : found) {
            if (staging[f.dir]) continue;
            const PackageDirLock& held = lock(f.dir, f.name);
            try {
                staging[f.dir] = std::make_unique<Staging>(dirs_[f.dir]->stage(held));
            } catch (const std::system_error& e) {
                throw refusal(f.dir, f.name, fmt::format("and that directory cannot be written: {}", e.what()));
            }
        }
        // Those moved before the k-th, back where they were.
        auto put_back = [&](std::size_t k) {
            for (std::size_t b = k; b-- > 0;) {
                const Found& m = found[b];
                if (!m.aside) continue;
                try {
                    dirs_[m.dir]->put_back(held_lock(m.dir), *staging[m.dir], *m.aside, m.name);
                } catch (const std::system_error&) {
                    // Something new took its name: this one stays out (and is deleted).
                }
            }
        };
        for (std::size_t k = 0; k < found.size(); ++k) {
            Found& f = found[k];
            std::optional<std::string> error;
            try {
                f.aside = dirs_[f.dir]->move_aside(held_lock(f.dir), *staging[f.dir], f.name);
            } catch (const std::system_error& e) {
                error = e.what();
            } catch (...) {
                put_back(k);
                throw;
            }
            if (error) {
                put_back(k);
                throw refusal(f.dir, f.name, fmt::format("and cannot be moved out of it: {}", *error));
            }
        }
        std::vector<std::string> out;
        for (const Found& f : found) {
            if (!f.aside) continue;
            out.push_back((dirs_[f.dir]->path() / f.name).string());
            if (hold == Hold::Yes)
                held_.push_back(Held{.dir = f.dir, .name = f.name, .aside = *f.aside, .staging = staging[f.dir].get()});
        }
        if (hold == Hold::Yes)
            for (auto& st : staging)
                if (st) kept_.push_back(std::move(st));
        return out;  // unless held, the staging folders and what was moved into them are deleted here
    }

    // What every package directory's folders claim, read now: clear() looks
    // claimants up in it (each directory listed and read once a pass, not
    // once a package) and reads each folder it names again before moving
    // it (one gone or changed since is left alone). A folder that appears
    // after the scan is not seen by that pass: run_gate scans before
    // placing and again after.
    void scan() {
        std::lock_guard guard(mutex_);
        std::vector<ClaimScan> scans(dirs_.size());
        for (std::size_t i = 0; i < dirs_.size(); ++i)
            if (dirs_[i]) scans[i] = dirs_[i]->scan_claims();
        scans_ = std::move(scans);
    }

    // Every folder held by clear(Hold::Yes) back at its name, newest first
    // (one whose name was taken meanwhile stays out, and is deleted).
    void restore() {
        std::lock_guard guard(mutex_);
        for (auto it = held_.rbegin(); it != held_.rend(); ++it) {
            try {
                dirs_[it->dir]->put_back(held_lock(it->dir), *it->staging, it->aside, it->name);
            } catch (const std::system_error&) {
            }
        }
        held_.clear();
        kept_.clear();
    }

    // Deletes every folder held by clear(Hold::Yes).
    void commit() {
        std::lock_guard guard(mutex_);
        held_.clear();
        kept_.clear();
    }

private:
    VerdictError refusal(std::size_t dir, const std::string& name, const std::string& why) const {
        return VerdictError(Verdict::Error, fmt::format("{} in package directory {} also claims this package, {}",
                                                        condaguard::quoted(name), dirs_[dir]->path().string(), why));
    }
    const PackageDirLock& held_lock(std::size_t dir) const { return dir == 0 ? target_lock_ : *locks_[dir]; }
    // The directory's lock, taken (and its leftover staging folders removed)
    // on first need; a directory that could not be locked once is not tried
    // again in this run.
    const PackageDirLock& lock(std::size_t dir, const std::string& name) {
        if (dir == 0 || locks_[dir]) return held_lock(dir);
        if (!unusable_[dir]) {
            try {
                PackageDirLock held = dirs_[dir]->lock();
                dirs_[dir]->clean_staging(held);
                return locks_[dir].emplace(std::move(held));
            } catch (const PackageDirBusy& e) {
                unusable_[dir] = e.what();
            } catch (const std::system_error& e) {
                unusable_[dir] = e.what();
            }
        }
        throw refusal(dir, name, fmt::format("and that directory cannot be locked: {}", *unusable_[dir]));
    }

    const std::vector<std::optional<PackageDir>>& dirs_;
    const PackageDirLock& target_lock_;
    std::vector<std::optional<PackageDirLock>> locks_;
    std::vector<std::optional<std::string>> unusable_;  // why a directory could not be locked
    struct Held {
        std::size_t dir;
        std::string name;
        std::string aside;
        Staging* staging;  // one of kept_
    };
    std::vector<Held> held_;
    std::vector<std::unique_ptr<Staging>> kept_;
    std::vector<ClaimScan> scans_;  // per directory, from the last scan()
    std::mutex mutex_;
};

}  // namespace

std::optional<std::string> revoked_key_reason(
    const std::function<std::optional<Revocation>(const std::string& fingerprint)>& revoked, std::string_view key,
    const std::string& fingerprint) {
    if (!revoked) return std::nullopt;
    const auto r = revoked(fingerprint);
    if (!r) return std::nullopt;
    return fmt::format("key {} ({}) is revoked since {}: {}", key, fingerprint, r->date, r->reason);
}

void apply_allowed_keys(Result& r, const ChannelTrust& trust, std::string_view channel) {
    if (r.verdict != Verdict::Valid || trust.allowed_keys.empty()) return;
    const auto& keys = trust.allowed_keys;
    const bool by_name = r.key && std::find(keys.begin(), keys.end(), *r.key) != keys.end();
    const bool by_fp = r.fingerprint && std::find(keys.begin(), keys.end(), "sha256:" + *r.fingerprint) != keys.end();
    if (by_name || by_fp) return;
    r.verdict = Verdict::UntrustedKey;
    r.reason = fmt::format("signed by key {}, which the policy does not allow for {} (allowed: {})",
                           r.key.value_or("?"),
                           channel.empty() ? std::string("this channel") : fmt::format("channel {}", channel),
                           fmt::join(keys, ", "));
}

GateReport run_gate(const std::vector<PackageUrl>& packages, const GateOptions& o, const Environment& env,
                    const std::function<void(const GateProgress&)>& progress) {
    GateReport report;
    // The first package directory is where packages land (made when
    // missing); the others are searched when they are package directories.
    // A dry run opens none of them.
    std::vector<std::optional<PackageDir>> dirs;
    std::optional<PackageDirLock> held;
    if (!o.dry_run) {
        if (o.pkgs_dirs.empty()) throw std::runtime_error("no package directory");
        dirs.emplace_back(PackageDir::open(o.pkgs_dirs.front(), CreateIfMissing::Yes));
        std::vector<std::pair<dev_t, ino_t>> seen;
        const auto identity = [](const PackageDir& d) {
            const struct stat st = fs::fstat_or_throw(d.fd(), d.path().string());
            return std::pair{st.st_dev, st.st_ino};
        };
        seen.push_back(identity(*dirs.front()));
        for (std::size_t i = 1; i < o.pkgs_dirs.size(); ++i) {
            try {
                // conda follows a link to a package directory; so does the search.
                PackageDir d = PackageDir::open(stdfs::canonical(o.pkgs_dirs[i]), CreateIfMissing::No);
                // One directory named twice (or through a link) is searched
                // and locked once: its second lock would wait for the first.
                const auto id = identity(d);
                if (std::find(seen.begin(), seen.end(), id) != seen.end()) {
                    dirs.emplace_back(std::nullopt);
                    continue;
                }
                seen.push_back(id);
                dirs.emplace_back(std::move(d));
            } catch (const std::system_error&) {
                dirs.emplace_back(std::nullopt);
            }
        }
        held.emplace(dirs.front()->lock());
        dirs.front()->clean_staging(*held);
    }

    const KeyStore store(env.keys_dir, KeyPolicy{.min_rsa_bits = o.min_rsa_bits});
    Verifier verifier(store);
    KeyJudge judge(store, o);
    StateStore state(env.state_dir);
    Fetcher fetcher(o.transport);

    std::map<IndexKey, IndexSlot> slots;
    for (const auto& p : packages) {
        IndexKey k{p.channel_url, p.subdir};
        slots.try_emplace(k, IndexSlot{.key = k});
    }
    load_indexes(slots, o, fetcher, judge, store, state, env);
    for (auto& [k, s] : slots) report.indexes.push_back(s.index.result);

    // Steps 2 and 3 (cached copies), then one transfer loop for the rest.
    std::vector<Job> jobs(packages.size());
    for (std::size_t i = 0; i < packages.size(); ++i) {
        Job& j = jobs[i];
        j.url = &packages[i];
        j.index = &slots.at(IndexKey{j.url->channel_url, j.url->subdir});
        j.result.path = redact_url(j.url->url);
        guarded(j.result, [&] {
            for (std::size_t k = 0; k < i; ++k)
                if (packages[k].fn == j.url->fn)
                    throw VerdictError(Verdict::Error,
                                       fmt::format("{} is asked for twice in this run ({}); one package directory "
                                                   "holds one {}",
                                                   j.url->fn, redact_url(packages[k].url), j.url->fn));
            check_record(j, o, env);
            if (o.dry_run) {
                if (j.is_unsigned()) {
                    j.result.reason = unverified_reason(*j.index->unsigned_by_policy, "dry run: record found; the "
                                                                                      "package itself was not fetched");
                    j.result.verdict = Verdict::Unverified;
                    return;
                }
                j.result.reason = j.index->index.guard ? dry_run_reason : dry_run_unsigned_reason;
                j.result.verdict = Verdict::Valid;
                return;
            }
            j.staging.emplace(dirs.front()->stage(*held));
            if (!find_cached(j, dirs)) j.archive = j.staging->new_archive_file();
            if (!j.is_unsigned()) j.sig = j.staging->new_archive_file();
            j.result.verdict = Verdict::Valid;  // so far
        });
        j.refused = j.result.verdict != Verdict::Valid;
    }
    if (o.dry_run) {
        for (auto& j : jobs) {
            report.unverified_by.push_back(unverified_rule(j));
            report.packages.push_back(std::move(j.result));
            report.folders.emplace_back(std::nullopt);
            report.cleaned.emplace_back();
        }
        return report;
    }
    const PackageDir& target = *dirs.front();
    const PackageDirLock& lock = *held;
    Claimants claimants(dirs, lock);
    std::vector<FetchRequest> reqs;
    std::vector<std::size_t> job_of;  // per request
    GateProgress total{.packages_total = jobs.size()};
    // Longest first (LPT): fetched and extracted in falling extraction cost,
    // so that no worker is left with a long package at the end while the
    // others idle.
    std::vector<std::uint64_t> cost(jobs.size());
    for (std::size_t i = 0; i < jobs.size(); ++i) cost[i] = extraction_cost(jobs[i]);
    std::vector<std::size_t> order(jobs.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::ranges::stable_sort(order, std::greater<>(), [&](std::size_t i) { return cost[i]; });
    for (const std::size_t i : order) {
        Job& j = jobs[i];
        if (j.refused) continue;
        if (!j.cached) {
            j.archive_request = reqs.size();
            reqs.push_back(FetchRequest{.url = j.url->url, .sink_fd = j.archive.get(), .max_bytes = j.trusted.size});
            job_of.push_back(i);
            total.bytes_expected += j.trusted.size;
        }
        if (!j.is_unsigned()) {
            j.sig_request = reqs.size();
            reqs.push_back(FetchRequest{.url = j.url->url + ".sig", .sink_fd = j.sig.get(),
                                        .max_bytes = max_sig_file_bytes, .same_origin_only = true});
            job_of.push_back(i);
        }
    }
    // Steps 3 to 5 for one package, once its transfers ended: verified and
    // extracted into its staging folder, not yet placed.
    std::vector<FetchResponse> got(reqs.size());
    auto finish = [&](std::size_t i) {
        Job& j = jobs[i];
        guarded(j.result, [&] {
            const ChannelTrust trust = o.trust_for(channel_location(j.url->channel_url));
            const std::string sig_display = redact_url(j.url->url) + ".sig";
            if (j.archive_request) check_download(j, got[*j.archive_request]);
            Result r{.path = j.result.path, .verdict = Verdict::Valid};
            if (j.is_unsigned()) {
                // Step 4 skipped: nothing to authenticate with.
                r.reason = unverified_reason(*j.index->unsigned_by_policy,
                                             "size and sha256 equal the unsigned index record's, info/index.json "
                                             "names the package");
            } else {
                // The channel's own .sig, for a cached copy too.
                check_sig_download(j, got[j.sig_request.value()]);
                j.sig_text = read_sig_text(j.sig.get(), sig_display);
                const SigFile sig = parse_sig_file(j.sig_text, sig_display);
                judge.refuse_revoked(sig);
                r = verifier.verify_digest_sig(j.trusted.sha256, sig, j.result.path);
                apply_allowed_keys(r, trust);
                if (r.verdict != Verdict::Valid) {
                    j.result = r;
                    return;
                }
            }
            // Step 5: the same open file, extracted (and hashed again on the way).
            extract_package(j.archive.get(), j.url->name, j.trusted, j.staging->folder_fd(), ExtractLimits{});
            const nlohmann::json index_json = extracted_index_json(j.staging->folder_fd());
            if (auto why = identity_mismatch(index_json, j.url->name, j.url->subdir)) throw invalid(*why);
            if (o.refuse_link_scripts) {
                // conda runs bin/.NAME-KIND.sh (Scripts/.NAME-KIND.bat on
                // Windows); a noarch: python package's python-scripts/ is
                // linked as bin/ (Scripts/).
                for (const char* kind : {"pre-link", "post-link", "pre-unlink"})
                    for (const char* dir : {"bin", "Scripts", "python-scripts"})
                        for (const char* ext : {"sh", "bat"}) {
                            const std::string script = fmt::format("{}/.{}-{}.{}", dir, j.url->name.name, kind, ext);
                            if (fs::kind_at(j.staging->folder_fd(), script) != fs::FileKind::Missing)
                                throw invalid(fmt::format(
                                    "carries a {} script ({}), and the policy refuses link scripts", kind, script));
                        }
            }
            j.record_json = record_json(j, index_json);
            j.result = r;
            j.ready = true;
        });
    };
    // They run on worker threads as each package's transfers end (at once
    // for cached copies of unsigned channels), while the others are still
    // transferring.
    std::vector<int> left(jobs.size(), 0);  // transfers not yet ended, per job (the fetching thread's)
    std::size_t transferred = 0;             // jobs whose transfers all ended (the fetching thread's)
    for (const std::size_t i : job_of) ++left[i];
    WorkQueue queue;
    for (std::size_t i = 0; i < jobs.size(); ++i)
        if (!jobs[i].refused && left[i] == 0) queue.push(i, cost[i]);
    {
        const unsigned workers = o.jobs != 0 ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
        Writeback writeback(target.fd());
        std::vector<std::jthread> pool;
        for (unsigned w = 0; w < workers; ++w)
            pool.emplace_back([&] {
                for (std::size_t i; queue.pop(i);) {
                    finish(i);
                    writeback.kick();
                }
            });
        const WorkQueue::Closer closer{queue};  // before the pool joins, whatever happens
        if (!reqs.empty())
            fetcher.fetch(
                reqs,
                [&](const FetchProgress& p) {
                    if (!progress) return;
                    GateProgress g = total;
                    g.bytes_done = p.bytes_done;
                    g.packages_done = transferred;
                    progress(g);
                },
                [&](std::size_t r, const FetchResponse& response) {
                    got[r] = response;  // written before the push, read after the pop
                    if (--left[job_of[r]] == 0) {
                        ++transferred;
                        queue.push(job_of[r], cost[job_of[r]]);
                    }
                });
    }

    // Step 6, all or nothing: only when every package of the run passed,
    // first every claimant of every package leaves the top level (held, so
    // that one that cannot undoes the others), then each package is placed.
    auto refused_count = [&] {
        return o.refused_elsewhere + static_cast<std::size_t>(std::count_if(
                                         jobs.begin(), jobs.end(), [](const Job& j) { return !j.ready; }));
    };
    if (refused_count() == 0) {
        Result scanned{.verdict = Verdict::Valid};
        guarded(scanned, [&] { claimants.scan(); });
        for (auto& j : jobs) {
            guarded(j.result, [&] {
                if (scanned.verdict != Verdict::Valid) throw VerdictError(scanned.verdict, scanned.reason);
                j.cleaned = claimants.clear(j.url->name, j.url->name.stem(), Claimants::Hold::Yes);
            });
            if (j.result.verdict == Verdict::Valid) continue;
            j.ready = false;
            claimants.restore();
            for (auto& k : jobs) k.cleaned.clear();
            break;
        }
    }
    if (refused_count() == 0) {
        // Each staged (step 1 of place), the file system synced once, then each published.
        const auto request = [](const Job& j) {
            return PlaceRequest{.fn = j.url->fn,
                                .archive_fd = j.archive.get(),
                                .sig_bytes = j.is_unsigned() ? std::nullopt : std::optional<std::string>(j.sig_text),
                                .repodata_record_json = j.record_json,
                                .url = redact_url(j.url->url)};
        };
        std::vector<Staging*> prepared;
        for (auto& j : jobs) {
            guarded(j.result, [&] {
                target.prepare(lock, *j.staging, request(j));
                prepared.push_back(&*j.staging);
            });
            if (j.result.verdict != Verdict::Valid) {
                j.ready = false;
                break;
            }
        }
        if (refused_count() == 0) {
            Result synced{.verdict = Verdict::Valid};
            guarded(synced, [&] { target.sync(lock, prepared); });
            // The one sync is every package's: none can be placed without it.
            if (synced.verdict != Verdict::Valid)
                for (auto& j : jobs) {
                    j.result.verdict = synced.verdict;
                    j.result.reason = fmt::format("{}; verified, not placed: {}", j.result.reason, synced.reason);
                    j.ready = false;
                }
        }
        if (refused_count() == 0) {
            for (auto& j : jobs) {
                const Result verified = j.result;
                guarded(j.result, [&] {
                    target.publish(lock, *j.staging, request(j));
                    j.placed = (target.path() / j.url->name.stem()).string();
                    j.result.reason = fmt::format("{}; placed in {}", verified.reason, j.placed);
                    j.unverified = j.is_unsigned();
                });
                if (j.placed.empty()) {
                    // An I/O error: those placed before stay (each is whole), the rest are not placed.
                    j.ready = false;
                    break;
                }
            }
            claimants.commit();
        } else {
            claimants.restore();  // nothing was placed
        }
    } else {
        claimants.restore();
    }
    const std::size_t refused = refused_count();
    for (auto& j : jobs) {
        if (!j.ready || !j.placed.empty()) continue;
        j.result.reason = fmt::format("{}; verified, not placed: {} other package{} of this run {} refused",
                                      j.result.reason, refused, refused == 1 ? "" : "s",
                                      refused == 1 ? "was" : "were");
        j.unverified = j.is_unsigned();
    }

    // Once more, now that everything is placed: a claimant that appeared
    // meanwhile (written by something that does not take the lock) goes too,
    // or the placed package becomes an ERROR.
    for (auto& j : jobs) j.staging.reset();
    Result rescanned{.verdict = Verdict::Valid};
    if (std::ranges::any_of(jobs, [](const Job& j) { return !j.placed.empty(); })) {
        if (o.after_placing) o.after_placing();
        guarded(rescanned, [&] { claimants.scan(); });
    }
    for (auto& j : jobs) {
        if (j.placed.empty() || j.result.verdict != Verdict::Valid) continue;
        guarded(j.result, [&] {
            if (rescanned.verdict != Verdict::Valid) throw VerdictError(rescanned.verdict, rescanned.reason);
            for (auto& path : claimants.clear(j.url->name, j.url->name.stem())) j.cleaned.push_back(std::move(path));
        });
        if (j.result.verdict == Verdict::Valid) report.placed.push_back(j.placed);
    }
    for (auto& j : jobs) {
        if (j.unverified && j.result.verdict == Verdict::Valid) j.result.verdict = Verdict::Unverified;
        const bool placed =
            (j.result.verdict == Verdict::Valid || j.result.verdict == Verdict::Unverified) && !j.placed.empty();
        report.folders.push_back(placed ? std::optional<std::string>(j.placed) : std::nullopt);
        report.unverified_by.push_back(unverified_rule(j));
        report.packages.push_back(std::move(j.result));
        report.cleaned.push_back(std::move(j.cleaned));
    }
    return report;
}

}  // namespace condaguard
