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
#include <bit>
#include <atomic>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;

namespace od = simdjson::ondemand;

// The index's own private copy (never a mapping of a file others may
// change), the records (views into it, or into `unescaped`) and the info object.
struct IndexData {
    simdjson::padded_string bytes;
    std::vector<IndexRecord> records;
    nlohmann::json info;
    // The strings that had escapes, unescaped: one list per parsing thread
    // (a deque never moves what it holds, so views into it stay valid).
    std::deque<std::deque<std::string>> unescaped;
    std::size_t segments = 0;  // see VerifiedIndex::parse_segments
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

std::size_t VerifiedIndex::parse_segments() const { return data ? data->segments : 0; }

namespace {

[[noreturn]] void malformed(const std::string& why) { throw VerdictError(Verdict::Invalid, "signed index: " + why); }

void check(simdjson::error_code e) {
    if (e != simdjson::SUCCESS) malformed(fmt::format("not valid JSON: {}", simdjson::error_message(e)));
}

bool is_json_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// ---- parsing: one walk over simdjson's On-Demand iterator, explicit stack --

// simdjson's On-Demand front end: stage 1 (SIMD, chosen at run time) finds
// every structural character of the text, then the walk below pulls the
// tokens in order; no tape is built. A string without a backslash is used as
// a view into the document itself; only strings with escapes are unescaped
// (which also checks their escapes) and those a record keeps are copied.
// Stage 1 has already checked UTF-8, unescaped control characters and string
// ends for the whole text; every scalar is parsed (numbers, true, false,
// null), so a malformed value anywhere is refused as the DOM parser would
// refuse it.
//
// A large index is walked in segments (see SegmentedParse below); a walk
// covers one segment, or the whole document.

// Where a container sits, for the records it may hold.
enum class Role : unsigned char { Other, Top, Packages, Record };

// The text between the quotes of a string starting right after its opening
// quote, as a view into the text, when it holds no escape. Stage 1 has
// checked that every string ends inside the text; the scan reads 8 bytes at a
// time (the text has SIMDJSON_PADDING bytes after its end) and never starts
// a word past the text's end.
std::optional<std::string_view> plain_string(const char* after_quote, const char* text_end) {
    constexpr std::uint64_t low7 = 0x7f7f7f7f7f7f7f7f, ones = 0x0101010101010101;
    // The high bit of each byte of `x` that is zero, and of no other byte.
    auto zero_bytes = [](std::uint64_t x) { return ~(((x & low7) + low7) | x | low7); };
    for (const char* p = after_quote; p < text_end; p += 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        const std::uint64_t m = zero_bytes(w ^ (ones * '"')) | zero_bytes(w ^ (ones * '\\'));
        if (m == 0) continue;
        const int first = std::endian::native == std::endian::little ? std::countr_zero(m) : std::countl_zero(m);
        const char* at = p + first / 8;
        if (*at == '\\') return std::nullopt;
        return std::string_view(after_quote, static_cast<std::size_t>(at - after_quote));
    }
    malformed("not valid JSON: unterminated string");
}

// Duplicate keys: a DuplicateKeyFinder (sys/json.hpp) over views of the
// keys (into the text, or the parser's buffer for keys with escapes, both
// alive for the whole walk).
using KeyFinder = DuplicateKeyFinder<std::hash<std::string_view>, ViewedKeys>;

// A key with its hash, ordered by (hash, text): equal keys sort side by side
// whatever the hashes are (colliding ones are ordered as text).
struct HashedKey {
    std::uint64_t hash;
    std::string_view key;
};
bool hashed_less(const HashedKey& a, const HashedKey& b) { return a.hash != b.hash ? a.hash < b.hash : a.key < b.key; }
bool hashed_equal(const HashedKey& a, const HashedKey& b) { return a.hash == b.hash && a.key == b.key; }

// The keys of one packages object within one segment (views into the
// document or the unescaped copies), hashed as they were walked (while their
// bytes were at hand).
struct KeyPiece {
    static constexpr int bucket_bits = 10;
    static constexpr std::size_t buckets = std::size_t{1} << bucket_bits;
    static std::size_t bucket_of(std::uint64_t hash) { return static_cast<std::size_t>(hash >> (64 - bucket_bits)); }

    std::vector<HashedKey> keys;  // in document order; once bucketed, by the top bits of their hash
    bool increasing = true;       // each key above the one before, in document order
    std::vector<std::uint32_t> starts;  // once bucketed: where each bucket's keys start (buckets + 1)

    // Orders the keys by bucket (a counting sort: two passes).
    void bucket() {
        if (!starts.empty()) return;
        starts.assign(buckets + 1, 0);
        for (const auto& k : keys) ++starts[bucket_of(k.hash) + 1];
        for (std::size_t b = 0; b < buckets; ++b) starts[b + 1] += starts[b];
        std::vector<HashedKey> out(keys.size());
        std::vector<std::uint32_t> next(starts.begin(), starts.end() - 1);
        for (const auto& k : keys) out[next[bucket_of(k.hash)]++] = k;
        keys = std::move(out);
    }
};

// No key is in two places of the buckets [from, to) of the pieces: each
// bucket's keys, from every piece, are sorted by (hash, text) so that equal
// keys meet side by side. O(n log n) whatever the hashes are (no table an
// attacker could fill with collisions: colliding keys only make a bucket
// larger to sort).
void check_buckets(std::span<KeyPiece* const> pieces, std::size_t from, std::size_t to) {
    std::vector<HashedKey> bucket;
    for (std::size_t b = from; b < to; ++b) {
        bucket.clear();
        for (const KeyPiece* p : pieces)
            bucket.insert(bucket.end(), p->keys.begin() + p->starts[b], p->keys.begin() + p->starts[b + 1]);
        std::sort(bucket.begin(), bucket.end(), hashed_less);
        const auto twice = std::adjacent_find(bucket.begin(), bucket.end(), hashed_equal);
        if (twice != bucket.end()) throw JsonError(JsonError::Kind::DuplicateKey, duplicate_key_message(twice->key));
    }
}

// The pieces of one packages object, in document order, hold no key twice;
// throws JsonError DuplicateKey. Increasing throughout (as conda's indexers
// write them): nothing more to do. Else the buckets are checked, those of
// large sets on two threads, half the buckets each.
void check_unique(std::span<KeyPiece* const> pieces) {
    bool sorted = true;
    const std::string_view* last = nullptr;
    std::size_t n = 0;
    for (const KeyPiece* p : pieces) {
        n += p->keys.size();
        if (!sorted) continue;
        if (!p->increasing || !p->starts.empty() || (last != nullptr && !p->keys.empty() && !(*last < p->keys.front().key)))
            sorted = false;
        if (!p->keys.empty()) last = &p->keys.back().key;
    }
    if (sorted) return;
    for (KeyPiece* p : pieces) p->bucket();
    constexpr std::size_t half = KeyPiece::buckets / 2;
    if (n < (std::size_t{1} << 16)) return check_buckets(pieces, 0, KeyPiece::buckets);
    std::exception_ptr upper_failed;
    {
        std::jthread upper([&] {
            try {
                check_buckets(pieces, half, KeyPiece::buckets);
            } catch (...) {
                upper_failed = std::current_exception();
            }
        });
        check_buckets(pieces, 0, half);
    }
    if (upper_failed) std::rethrow_exception(upper_failed);
}

// Where a segment of the document starts or ends: at the document's start
// or end, between two members of the top-level object, or between two
// records of a packages object.
enum class Edge : unsigned char { Document, Top, Packages };

// What one walk parses: `size` bytes of the document, from `doc_at` on, as
// found in `json` from `content` on. A segment that starts at Edge::Top is
// preceded in `json` by `{`, at Edge::Packages by `{"":{` (its first
// top-level member stands in for the "packages" or "packages.conda" object it
// continues); one that ends at Edge::Top is followed by `}`, at
// Edge::Packages by `}}` (closing that object and the top level).
struct WalkText {
    simdjson::padded_string_view json;
    const char* content = nullptr;
    const char* doc_at = nullptr;
    std::size_t size = 0;
    Edge start = Edge::Document;
    Edge end = Edge::Document;
};

// What the walk of a segment leaves for the checks across segments (keys
// are views into the document or the unescaped copies).
struct SegmentKeys {
    std::vector<std::string_view> top;   // of the top-level object, but the stand-in
    KeyPiece head;                       // of the continued object, when it ends in this segment
    KeyPiece tail;                       // of the object open where this segment is cut
    bool head_is_tail = false;           // the continued object is still open at the cut
};

// One open object or array. Its iterator is advanced only once the value it
// handed out (and everything nested in it) has been walked, as On-Demand
// requires: the stack holds exactly the iterators a recursive walk would.
struct Frame {
    bool is_object = false;
    bool started = false;           // an element was handed out: advance before the next
    bool own_keys = false;          // keys checked across segments, not by the finder
    bool head = false;              // the object a continued segment starts inside
    Role role = Role::Other;
    od::object_iterator oit, oend;
    od::array_iterator ait, aend;
    std::string_view under;         // the key this container is the value of (for messages)
    std::size_t record = 0;         // Role::Record: index into the records
    const char* open_at = nullptr;  // Role::Record: its '{'
    nlohmann::json* copy = nullptr; // inside "info": where this container's copy is built
};

class Walker {
public:
    Walker(const WalkText& text, std::vector<IndexRecord>& records, std::deque<std::string>& unescaped)
        : text_(text), segmented_(text.start != Edge::Document || text.end != Edge::Document), records_(records),
          unescaped_(unescaped), text_end_(text.json.data() + text.json.size()),
          stand_in_pending_(text.start == Edge::Packages) {
        stack_.reserve(max_json_depth);
    }

    nlohmann::json info;
    bool saw_info = false;
    SegmentKeys keys_out;  // segments only

    // Checks the whole text (every scalar parsed, nesting at most
    // max_json_depth, no object holding a key twice, compared unescaped;
    // in a segment, the keys of the top level and of the packages objects
    // are left in keys_out instead), collects the records of "packages" and
    // "packages.conda", and copies "info" into nlohmann's form.
    void walk(od::document& doc, const std::atomic<bool>& cancelled) {
        doc_ = &doc;
        od::json_type t{};
        check(doc.type().get(t));
        if (t != od::json_type::object) malformed("the document is not a JSON object");
        od::object top;
        check(doc.get_object().get(top));
        push_object(top, Role::Top, "", nullptr);
        while (!stack_.empty()) {
            Frame& f = stack_.back();
            if (f.is_object) {
                if (f.started) ++f.oit;
                f.started = true;
                if (!(f.oit != f.oend)) {
                    close_object();
                    continue;
                }
                // Used where it stands, not copied out (a copy costs a
                // store-forwarding stall per member, a tenth of the walk).
                auto next = *f.oit;
                check(next.error());
                od::field&& kv = std::move(next).value_unsafe();
                const std::string_view key = key_of(kv);
                if (!f.own_keys) unique([&] { keys_.key(key); });
                else if (f.role == Role::Top && !stand_in_pending_) keys_out.top.push_back(keep(key));
                field(f, key, kv.value(), cancelled);  // may push: `f` is not used after this
            } else {
                if (f.started) ++f.ait;
                f.started = true;
                if (!(f.ait != f.aend)) {
                    last_closed_ = Role::Other;
                    stack_.pop_back();
                    continue;
                }
                auto next = *f.ait;
                check(next.error());
                od::value&& v = std::move(next).value_unsafe();
                nlohmann::json* slot = f.copy != nullptr ? &f.copy->emplace_back() : nullptr;
                value(v, "[]", slot);
            }
        }
        // Past the top-level object's end there must be nothing (On-Demand
        // only checked that the last token is a '}').
        const char* rest = nullptr;
        if (doc.current_location().get(rest) != simdjson::OUT_OF_BOUNDS)
            malformed("not valid JSON: more after the top-level object");
        if (!segmented_ && !saw_info) malformed("info is not a JSON object");
    }

private:
    std::string where() const {
        std::string w;
        for (const auto& f : stack_) {
            if (f.role == Role::Top) continue;
            if (!w.empty()) w += '/';
            w += f.under;
        }
        return w.empty() ? "the top level" : w;
    }

    // `s` as a view that outlives the walk: into the document when it is
    // part of the text, else a copy (a string that had escapes).
    std::string_view keep(std::string_view s) {
        if (auto in_doc = in_document(s)) return *in_doc;
        return unescaped_.emplace_back(s);
    }
    // The same bytes in the document, when `s` is part of the text's content.
    std::optional<std::string_view> in_document(std::string_view s) const {
        const auto at = reinterpret_cast<std::uintptr_t>(s.data());
        const auto from = reinterpret_cast<std::uintptr_t>(text_.content);
        if (at >= from && at - from <= text_.size && s.size() <= text_.size - (at - from))
            return std::string_view(text_.doc_at + (at - from), s.size());
        return std::nullopt;
    }

    std::string_view key_of(od::field& kv) {
        if (auto plain = plain_string(kv.key().raw(), text_end_)) return *plain;
        std::string_view k;
        check(kv.unescaped_key().get(k));
        return k;
    }

    std::string_view string_of(od::value& v) {
        // The token runs from the opening quote to the next token: the
        // closing quote, then white space (nothing in a string is a token).
        const std::string_view token = v.raw_json_token();
        std::size_t end = token.size();
        while (end > 1 && is_json_space(token[end - 1])) --end;
        if (end >= 2 && token[end - 1] == '"') {
            const std::string_view inner = token.substr(1, end - 2);
            if (std::memchr(inner.data(), '\\', inner.size()) == nullptr) return inner;
        }
        std::string_view s;
        check(v.get_string().get(s));
        return s;
    }

    // Runs a step of the duplicate-key finder; a repeated key is INVALID,
    // naming where it is.
    template <class F>
    void unique(F&& step) {
        try {
            step();
        } catch (const JsonError& e) {
            malformed(fmt::format("{} in {}", e.what(), where()));
        }
    }

    void close_object() {
        const Frame& f = stack_.back();
        if (f.role == Role::Record) finish_record(f);
        if (!f.own_keys) unique([&] { keys_.close(); });
        else if (f.role == Role::Packages) packages_closed(f.head);
        else top_closed();
        last_closed_ = f.role;
        stack_.pop_back();
    }

    // The record's text: from its '{' to the '}' just consumed (On-Demand
    // now stands on the token after it, with only white space between).
    void finish_record(const Frame& f) {
        const char* next = nullptr;
        check(doc_->current_location().get(next));
        const char* end = next;
        while (end > f.open_at && is_json_space(end[-1])) --end;
        if (end - f.open_at < 2 || *f.open_at != '{' || end[-1] != '}')
            malformed(fmt::format("{}: cannot delimit the record", records_[f.record].fn));
        const auto raw = in_document(std::string_view(f.open_at, static_cast<std::size_t>(end - f.open_at)));
        if (!raw) malformed(fmt::format("{}: cannot delimit the record", records_[f.record].fn));
        records_[f.record].raw = *raw;
    }

    // ---- a segment's top level and packages objects: their keys are kept,
    // and checked across segments unless the object starts and ends here.

    void packages_opened() {
        settle();
        piece_ = {};
    }
    void packages_closed(bool head) {
        settle();
        closed_ = std::move(piece_);
        piece_ = {};
        prev_key_ = {};
        closed_head_ = head;
        have_closed_ = true;
    }
    // The packages object closed before was closed by the document's own bytes.
    void settle() {
        if (!have_closed_) return;
        have_closed_ = false;
        if (closed_head_) {
            keys_out.head = std::move(closed_);
            return;
        }
        unique([&] { check_unique(std::array{&closed_}); });
    }
    void top_closed() {
        // A segment that ends at Edge::Top: the added '}' closed the top
        // level (it is the last token), so its bytes ended between two
        // members of it.
        if (text_.end != Edge::Packages) {
            settle();
            return;
        }
        // The last byte closed the top level and the one before it (the
        // only tokens after the segment's own bytes) a packages object: the
        // segment ends between two records of that object, as its cut
        // assumed; anything else is refused here and walked whole instead.
        if (last_closed_ != Role::Packages || !have_closed_) malformed("a segment does not end inside packages");
        have_closed_ = false;
        keys_out.head_is_tail = closed_head_;
        keys_out.tail = std::move(closed_);
    }

    void field(Frame& f, std::string_view key, od::value& v, const std::atomic<bool>& cancelled) {
        switch (f.role) {
        case Role::Top:
            if (stand_in_pending_) {
                stand_in_pending_ = false;
                push_object(object_of(v, "", "packages"), Role::Packages, "packages", nullptr);
                stack_.back().head = true;
                return;
            }
            if (key == "packages" || key == "packages.conda") {
                push_object(object_of(v, "", key), Role::Packages, key, nullptr);
                return;
            }
            if (key == "info") {
                od::json_type t{};
                check(v.type().get(t));
                if (t != od::json_type::object) malformed("info is not a JSON object");
                saw_info = true;
                info = nlohmann::json::object();
                push_object(object_of(v, "", key), Role::Other, key, &info);
                return;
            }
            break;
        case Role::Packages: {
            const char* open_at = v.raw_json_token().data();
            const od::object rec = object_of(v, f.under, key);
            if (cancelled.load(std::memory_order_relaxed)) throw std::runtime_error("cancelled");
            const std::size_t i = records_.size();
            const std::string_view fn = keep(key);
            if (f.own_keys) {
                // Hashed and compared now, with `key` still in the cache.
                if (!piece_.keys.empty() && !(prev_key_ < key)) piece_.increasing = false;
                prev_key_ = key;
                piece_.keys.push_back(HashedKey{std::hash<std::string_view>{}(key), fn});
            }
            records_.push_back(IndexRecord{.fn = fn});
            push_object(rec, Role::Record, key, nullptr);
            stack_.back().record = i;
            stack_.back().open_at = open_at;
            return;
        }
        case Role::Record:
            if (record_field(records_[f.record], key, v)) return;
            break;
        case Role::Other: break;
        }
        value(v, key, f.copy != nullptr ? &(*f.copy)[std::string(key)] : nullptr);
    }

    // `v` as an object; else INVALID naming it as PARENT/KEY.
    static od::object object_of(od::value& v, std::string_view parent, std::string_view key) {
        od::json_type t{};
        check(v.type().get(t));
        if (t != od::json_type::object)
            malformed(parent.empty() ? fmt::format("'{}' is not an object", key)
                                     : fmt::format("{}/{} is not an object", parent, key));
        od::object o;
        check(v.get_object().get(o));
        return o;
    }

    // A field the records keep; false for any other (walked as any value).
    bool record_field(IndexRecord& r, std::string_view key, od::value& v) {
        // By length first: each comparison below is then of a known
        // length, done inline instead of by a call per field.
        std::string_view* to = nullptr;
        const std::size_t n = key.size();
        if (n == 6 && key == "sha256") to = &r.sha256;
        else if (n == 3 && key == "md5") to = &r.md5;
        else if (n == 4 && key == "name") to = &r.name;
        else if (n == 7 && key == "version") to = &r.version;
        else if (n == 5 && key == "build") to = &r.build;
        else if (n == 6 && key == "subdir") to = &r.subdir;
        else if (n == 4 && key == "size") {
            if (v.get_uint64().get(r.size) != simdjson::SUCCESS)
                malformed(fmt::format("{}/size is not a non-negative integer", r.fn));
            r.has_size = true;
            return true;
        } else if (n == 9 && key == "timestamp") {
            // Kept when a non-negative integer; any other value is walked
            // (and so checked) as any value. A failed get_uint64 consumes nothing.
            if (v.get_uint64().get(r.timestamp) != simdjson::SUCCESS) return false;
            r.has_timestamp = true;
            return true;
        } else {
            return false;
        }
        od::json_type t{};
        check(v.type().get(t));
        if (t != od::json_type::string) malformed(fmt::format("{}/{} is not a string", r.fn, key));
        *to = keep(string_of(v));
        return true;
    }

    // Any value: containers are pushed, scalars parsed (and copied to `slot`).
    void value(od::value& v, std::string_view under, nlohmann::json* slot) {
        od::json_type t{};
        check(v.type().get(t));
        switch (t) {
        case od::json_type::object: {
            od::object o;
            check(v.get_object().get(o));
            if (slot != nullptr) *slot = nlohmann::json::object();
            push_object(o, Role::Other, under, slot);
            return;
        }
        case od::json_type::array: {
            od::array a;
            check(v.get_array().get(a));
            if (slot != nullptr) *slot = nlohmann::json::array();
            push_array(a, under, slot);
            return;
        }
        case od::json_type::string: {
            const std::string_view s = string_of(v);
            if (slot != nullptr) *slot = std::string(s);
            return;
        }
        case od::json_type::number: {
            od::number n;
            check(v.get_number().get(n));
            if (slot == nullptr) return;
            switch (n.get_number_type()) {
            case od::number_type::signed_integer: *slot = n.get_int64(); return;
            case od::number_type::unsigned_integer: *slot = n.get_uint64(); return;
            case od::number_type::floating_point_number: *slot = n.get_double(); return;
            }
            return;
        }
        case od::json_type::boolean: {
            bool b = false;
            check(v.get_bool().get(b));
            if (slot != nullptr) *slot = b;
            return;
        }
        case od::json_type::null: {
            bool is_null = false;
            check(v.is_null().get(is_null));
            if (!is_null) check(simdjson::N_ATOM_ERROR);
            if (slot != nullptr) *slot = nullptr;
            return;
        }
        }
    }

    void enter() {
        if (stack_.size() >= max_json_depth) malformed(fmt::format("not valid JSON: {}", too_deep_message(max_json_depth)));
    }

    void push_object(od::object o, Role role, std::string_view under, nlohmann::json* copy) {
        enter();
        Frame& f = stack_.emplace_back();
        f.is_object = true;
        f.role = role;
        f.under = under;
        f.copy = copy;
        f.own_keys = segmented_ && (role == Role::Top || role == Role::Packages);
        if (!f.own_keys) keys_.open();
        if (f.own_keys && role == Role::Packages) packages_opened();
        check(o.begin().get(f.oit));
        check(o.end().get(f.oend));
    }

    void push_array(od::array a, std::string_view under, nlohmann::json* copy) {
        enter();
        Frame& f = stack_.emplace_back();
        f.under = under;
        f.copy = copy;
        check(a.begin().get(f.ait));
        check(a.end().get(f.aend));
    }

    const WalkText& text_;
    const bool segmented_;
    std::vector<IndexRecord>& records_;
    std::deque<std::string>& unescaped_;
    const char* text_end_;
    od::document* doc_ = nullptr;
    bool stand_in_pending_;  // a continued segment's first member is still to come
    std::vector<Frame> stack_;
    KeyFinder keys_;
    Role last_closed_ = Role::Other;
    KeyPiece piece_;             // keys of the open packages object (segments)
    std::string_view prev_key_;  // its last key, as walked
    KeyPiece closed_;            // of the one closed last, not settled yet
    bool closed_head_ = false;
    bool have_closed_ = false;
};

// simdjson counts the document itself as a level and asserts (in debug
// builds; in release it would index past its arrays) that no iterator goes as
// deep as its max_depth: give it room, the walk enforces ours.
constexpr std::size_t simdjson_depth = max_json_depth + 2;

// Parses the whole index into `data` in one walk: any JSON error, a depth
// past the cap, a repeated key anywhere, or a record of the wrong shape is
// INVALID, with a reason naming where.
void parse_whole(IndexData& data) {
    od::parser parser;
    check(parser.allocate(data.bytes.size(), simdjson_depth));
    od::document doc;
    check(parser.iterate(data.bytes).get(doc));
    data.records.clear();
    // A record takes well over 100 bytes of JSON: reserve once (pages
    // not written are never touched) instead of regrowing and copying.
    data.records.reserve(data.bytes.size() / 100 + 16);
    const WalkText text{.json = simdjson::padded_string_view(data.bytes.data(), data.bytes.size(),
                                                             data.bytes.size() + simdjson::SIMDJSON_PADDING),
                        .content = data.bytes.data(),
                        .doc_at = data.bytes.data(),
                        .size = data.bytes.size()};
    const std::atomic<bool> never{false};
    Walker w(text, data.records, data.unescaped.emplace_back());
    w.walk(doc, never);
    data.info = std::move(w.info);
    data.segments = 1;
}

constexpr std::size_t done_flag = ~std::size_t{0};  // the reader stopped early (error)

// The parse of a large index in segments, on several threads, each segment
// as soon as its bytes have been read (while the hash runs on the caller's
// thread). A segment is cut right after a '}' that is followed by white
// space, one ',', white space and a '"': where one record of a packages
// object ends and the next key starts, or one member of the top level and the
// next. That place is only a guess (the same bytes may sit inside a string,
// or end an object nested in a record); it is proven by the walks:
//  - segment 0 starts at the document's start and the last one runs to its
//    end; each segment is walked with its edges written around its bytes
//    (WalkText: `{"":{` or `{` before, `}}` or `}` after), trying the edges
//    it may have until one walk succeeds.
//  - the added closers can only close what is open where the bytes end, so
//    a walk ending at Edge::Packages succeeds only when the bytes ended
//    between two members of a packages object at depth two (the walk checks
//    that its last two '}' closed a packages object, then the top level), and
//    one ending at Edge::Top only when they ended between two members of the
//    top level. The bytes between two segments are `,` and white space.
//  - segments are handed over in document order, and one whose walk started
//    from another edge than the one before it ended at is walked again from
//    that edge. By induction from the document's start every segment is
//    walked in the state the whole document's walk would be in there, so it
//    sees the same tokens, depths, values and records.
//  - what no single walk sees is checked once all are done: the keys of the
//    top level, and of each packages object that spans segments, are each
//    unique over all their segments (compared unescaped), and "info" is
//    there. Every object within one segment is checked in its walk.
// When any of this fails (no edges fit a segment, or a document that is not
// a valid index) the document is walked again whole (parse_whole), which
// gives the verdict and the reason: segments only ever make a valid index
// faster to accept, never a document acceptable that the whole walk
// refuses. At worst a document costs a few walks of two segments and one
// whole walk.
class SegmentedParse {
public:
    SegmentedParse(IndexData& data, std::size_t segment_bytes, const std::atomic<std::size_t>& ready,
                   const std::atomic<bool>& cancelled)
        : data_(data), doc_(data.bytes.data()), size_(data.bytes.size()),
          segment_bytes_(std::max<std::size_t>(segment_bytes, 1)), ready_(ready), cancelled_(cancelled) {}

    // One parsing thread: claims the next segment, walks it, and hands its
    // records over in document order.
    void work(std::deque<std::string>& unescaped) {
        Scratch scratch{.unescaped = unescaped};
        while (auto seg = claim()) {
            std::optional<Done> d = walk_segment(*seg, std::nullopt, scratch);
            std::unique_lock lock(commit_m_);
            commit_cv_.wait(lock, [&] { return committed_ == seg->index || failed_; });
            if (failed_) return;
            if (d && d->start != end_before_) {
                // Walked from the wrong edge: the segment before ended elsewhere.
                const Edge from = end_before_;
                lock.unlock();
                d = walk_segment(*seg, from, scratch);
                lock.lock();
            }
            if (!d) {
                failed_ = true;
                commit_cv_.notify_all();
                return;
            }
            data_.records.insert(data_.records.end(), scratch.records.begin(), scratch.records.end());
            end_before_ = d->end;
            done_.push_back(std::move(*d));
            ++committed_;
            commit_cv_.notify_all();
        }
    }

    // After every thread has ended: true when every segment was walked and
    // the checks across segments pass (data_ then holds the records and the
    // info); false means walk the document whole instead.
    bool finish() {
        if (failed_ || !claimed_all_ || committed_ != next_index_) return false;
        try {
            KeyFinder top;
            top.open();
            bool saw_info = false;
            std::vector<KeyPiece*> span;  // one packages object's keys, by segment
            for (auto& d : done_) {
                for (const auto& k : d.keys.top) top.key(k);
                if (d.saw_info) {
                    saw_info = true;
                    data_.info = std::move(d.info);
                }
                if (d.start == Edge::Packages && !d.keys.head_is_tail) {
                    span.push_back(&d.keys.head);
                    check_unique(span);
                    span.clear();
                }
                if (d.end == Edge::Packages) span.push_back(&d.keys.tail);
            }
            top.close();
            data_.segments = done_.size();
            return saw_info && span.empty();
        } catch (const JsonError&) {
            return false;
        }
    }

private:
    struct Segment {
        std::size_t index = 0, begin = 0, end = 0;
        bool last = false;
    };
    struct Done {
        Edge start = Edge::Document, end = Edge::Document;
        SegmentKeys keys;
        bool saw_info = false;
        nlohmann::json info;
    };

    // What a parsing thread keeps from one segment to the next.
    struct Scratch {
        std::deque<std::string>& unescaped;
        od::parser parser{};
        std::unique_ptr<char[]> buf{};
        std::size_t buf_capacity = 0;
        std::vector<IndexRecord> records{};
    };

    // Walks `seg` from `start` (else from each edge it may start at) to each
    // edge it may end at, until one walk succeeds; its records are left in
    // scratch.records. Nothing when none does.
    std::optional<Done> walk_segment(const Segment& seg, std::optional<Edge> start, Scratch& sc) {
        std::vector<Edge> starts{Edge::Document}, ends{Edge::Document};
        if (seg.index > 0) starts = start ? std::vector<Edge>{*start} : std::vector<Edge>{Edge::Packages, Edge::Top};
        if (!seg.last) ends = {Edge::Packages, Edge::Top};
        for (const Edge from : starts)
            for (const Edge to : ends)
                if (auto d = walk_segment_once(seg, from, to, sc)) return d;
        return std::nullopt;
    }

    std::optional<Done> walk_segment_once(const Segment& seg, Edge start, Edge end, Scratch& sc) {
        Done d{.start = start, .end = end};
        sc.records.clear();
        try {
            const std::size_t n = seg.end - seg.begin;
            WalkText text{.doc_at = doc_ + seg.begin, .size = n, .start = start, .end = end};
            if (start == Edge::Document && end == Edge::Document) {
                text.json = simdjson::padded_string_view(doc_, size_, size_ + simdjson::SIMDJSON_PADDING);
                text.content = doc_;
            } else {
                const std::string_view before = start == Edge::Packages ? R"({"":{)" : start == Edge::Top ? "{" : "";
                const std::string_view after = end == Edge::Packages ? "}}" : end == Edge::Top ? "}" : "";
                const std::size_t len = before.size() + n + after.size();
                if (sc.buf_capacity < len + simdjson::SIMDJSON_PADDING) {
                    sc.buf_capacity = len + len / 4 + simdjson::SIMDJSON_PADDING;
                    sc.buf = std::make_unique_for_overwrite<char[]>(sc.buf_capacity);
                }
                char* p = sc.buf.get();
                std::memcpy(p, before.data(), before.size());
                std::memcpy(p + before.size(), doc_ + seg.begin, n);
                std::memcpy(p + before.size() + n, after.data(), after.size());
                std::memset(p + len, 0, simdjson::SIMDJSON_PADDING);
                text.json = simdjson::padded_string_view(p, len, len + simdjson::SIMDJSON_PADDING);
                text.content = p + before.size();
            }
            if (sc.parser.capacity() < text.json.size()) check(sc.parser.allocate(text.json.size(), simdjson_depth));
            od::document doc;
            check(sc.parser.iterate(text.json).get(doc));
            Walker w(text, sc.records, sc.unescaped);
            w.walk(doc, cancelled_);
            d.keys = std::move(w.keys_out);
            if (!d.keys.head.increasing) d.keys.head.bucket();
            if (!d.keys.tail.increasing) d.keys.tail.bucket();
            d.saw_info = w.saw_info;
            d.info = std::move(w.info);
            return d;
        } catch (const std::exception&) {
            return std::nullopt;  // not from these edges, or not valid at all
        }
    }

    // Waits until the first `n` bytes have been read; false when the reader
    // stopped early or the parse was cancelled.
    bool bytes_until(std::size_t n) {
        for (;;) {
            const std::size_t r = ready_.load(std::memory_order_acquire);
            if (r == done_flag || cancelled_.load(std::memory_order_relaxed)) return false;
            if (r >= n) return true;
            ready_.wait(r, std::memory_order_acquire);
        }
    }

    // The next segment: at least segment_bytes_ long, cut at the first
    // place after that which looks like the end of a record (see above), or
    // the rest of the document. Each byte is looked at once.
    std::optional<Segment> claim() {
        std::lock_guard lock(claim_m_);
        if (claimed_all_ || failed_.load(std::memory_order_relaxed)) return std::nullopt;
        Segment s{.index = next_index_, .begin = next_begin_};
        std::size_t from = s.begin + std::min(segment_bytes_, size_ - s.begin);
        for (;;) {
            if (from >= size_) {
                if (!bytes_until(size_)) return std::nullopt;
                s.end = size_;
                s.last = true;
                claimed_all_ = true;
                break;
            }
            if (!bytes_until(from + 1)) return std::nullopt;
            const std::size_t avail = std::min(ready_.load(std::memory_order_acquire), size_);
            const void* hit = std::memchr(doc_ + from, '}', avail - from);
            if (hit == nullptr) {
                from = avail;
                continue;
            }
            const auto close = static_cast<std::size_t>(static_cast<const char*>(hit) - doc_);
            std::size_t q = close + 1;
            bool comma = false, matched = false;
            for (; q < size_; ++q) {
                if (!bytes_until(q + 1)) return std::nullopt;
                const char c = doc_[q];
                if (is_json_space(c)) continue;
                if (c == ',' && !comma) {
                    comma = true;
                    continue;
                }
                matched = comma && c == '"';
                break;
            }
            if (matched) {
                s.end = close + 1;
                next_begin_ = q;
                break;
            }
            from = close + 1;
        }
        ++next_index_;
        return s;
    }

    IndexData& data_;
    const char* doc_;
    const std::size_t size_;
    const std::size_t segment_bytes_;
    const std::atomic<std::size_t>& ready_;
    const std::atomic<bool>& cancelled_;

    std::mutex claim_m_;
    std::size_t next_begin_ = 0, next_index_ = 0;
    bool claimed_all_ = false;

    std::mutex commit_m_;
    std::condition_variable commit_cv_;
    std::size_t committed_ = 0;
    Edge end_before_ = Edge::Document;  // where the last segment handed over ended
    std::atomic<bool> failed_{false};
    std::vector<Done> done_;  // in document order
};

// ---- step 1: read and hash (and parse, see below) ------------------------

fs::OpenedFile open_index(int dirfd, const stdfs::path& path, std::uint64_t cap) {
    fs::OpenedFile f = fs::open_untrusted_at(dirfd, repodata_name, path);
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    if (size > cap) throw VerdictError(Verdict::Invalid, fmt::format("index is {} bytes, over the limit of {}", size, cap));
    return f;
}

struct ReadIndex {
    Sha256Digest digest{};
    std::exception_ptr parse_failure;  // why the bytes are not a valid index
};

// Has the kernel provide the pages of [p, p + n) at once, which costs a
// third less than taking a fault on each. Only a hint: where the kernel
// cannot (before Linux 5.14) the pages come as faults, as without it.
void prefault(char* p, std::size_t n) {
#ifdef MADV_POPULATE_WRITE
    static const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto from = reinterpret_cast<std::uintptr_t>(p) & ~(page - 1);
    const auto to = reinterpret_cast<std::uintptr_t>(p) + n;
    (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}

// Reads the whole index once into a private padded buffer (a reading
// thread); the calling thread hashes each chunk as soon as it has been read,
// so the digest is ready when the last byte arrives, and parsing threads walk
// it in segments as soon as each has been read (SegmentedParse).
//
// This is safe because nothing parsed is used, trusted or even reported
// before the signature over the digest verifies: the parse writes only into
// `data` (private to this call) and `parse_failure`, and the caller looks at
// neither unless verify_digest said VALID; on any other verdict both are
// thrown away. The bytes parsed are the bytes hashed (the one private copy,
// never written after it is read). The parser only ever sees at most the
// size cap, nests at most max_json_depth deep (its stack is fixed, not
// recursive), and is the same code that would parse the bytes after
// authentication. What it buys: the parse overlaps the read and the hash
// instead of following them.
ReadIndex read_hash_parse(const fs::OpenedFile& f, IndexData& data, const ChannelPolicy& policy) {
    const auto size = static_cast<std::size_t>(f.st.st_size);
    data.bytes = simdjson::padded_string(size);
    // A record takes well over 100 bytes of JSON: reserve once (pages
    // not written are never touched) instead of regrowing and copying.
    data.records.reserve(size / 100 + 16);
    std::atomic<std::size_t> ready{0};
    std::atomic<bool> cancelled{false};
    int read_errno = 0;
    ReadIndex out;
    SegmentedParse segments(data, policy.index_segment_bytes, ready, cancelled);
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t threads = std::min<std::size_t>(
        {policy.jobs == 0 ? cores : policy.jobs, 4, size / std::max<std::size_t>(policy.index_segment_bytes, 1) + 1});
    std::vector<std::jthread> parsers;
    for (std::size_t i = 0; i < threads; ++i)
        parsers.emplace_back([&segments, &unescaped = data.unescaped.emplace_back()] { segments.work(unescaped); });
    std::jthread reader([&] {
        std::size_t done = 0;
        while (done < size) {
            const std::size_t want = std::min<std::size_t>(size - done, hash_chunk_bytes);
            prefault(data.bytes.data() + done, want);
            ssize_t n = ::read(f.fd.get(), data.bytes.data() + done, want);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                read_errno = n < 0 ? errno : 0;
                ready.store(done_flag, std::memory_order_release);
                ready.notify_all();
                return;
            }
            done += static_cast<std::size_t>(n);
            ready.store(done, std::memory_order_release);
            ready.notify_all();
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
    parsers.clear();  // joins them
    if (hashed != size) {
        if (read_errno != 0) throw std::system_error(read_errno, std::generic_category(), "read");
        throw std::runtime_error("file shrank while being read");
    }
    char extra;
    if (::read(f.fd.get(), &extra, 1) != 0) throw std::runtime_error("file grew while being read");
    out.digest = h.finish();
    if (!segments.finish()) {
        try {
            parse_whole(data);
        } catch (...) {
            out.parse_failure = std::current_exception();
        }
    }
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
        const ReadIndex read = read_hash_parse(f, *data, policy);
        r = verifier.verify_digest_at(read.digest, dirfd, repodata_sig_name, sig_path, path.string());
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

VerifiedIndex read_unsigned_index(const stdfs::path& dir, const std::string& subdir, const ChannelPolicy& policy) {
    VerifiedIndex out;
    const stdfs::path path = dir / repodata_name;
    Result& r = out.result;
    r.path = path.string();
    auto data = std::make_shared<IndexData>();
    guarded(r, [&] {
        const fs::Fd dirfd = fs::open_dir(dir);
        if (fs::kind_at(dirfd.get(), repodata_sig_name) != fs::FileKind::Missing)
            throw VerdictError(Verdict::Error, fmt::format("index has a {}: it must be verified", repodata_sig_name));
        const fs::OpenedFile f = open_index(dirfd.get(), path, policy.max_index_bytes);
        const ReadIndex read = read_hash_parse(f, *data, policy);
        if (read.parse_failure) std::rethrow_exception(read.parse_failure);
        const std::string info_subdir = data->info.is_object() ? data->info.value("subdir", subdir) : subdir;
        if (info_subdir != subdir)
            throw VerdictError(Verdict::Invalid, fmt::format("info.subdir is '{}', expected '{}'", info_subdir, subdir));
        r.verdict = Verdict::Valid;
        r.reason = fmt::format("index is not signed (no {}), accepted as the policy allows for a channel never seen "
                               "signed; its records are not authenticated; each package's own signature still is",
                               repodata_sig_name);
        out.data = std::move(data);
    });
    if (r.verdict != Verdict::Valid) out.data.reset();
    return out;
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

// One record of a verified index against the file it names in DIR, open as
// `dirfd` (the descriptor the index was read through): the package and its
// .sig are opened inside it (openat, O_NOFOLLOW), so a subdir replaced by a
// link after its index was checked is never followed.
Result check_package(int dirfd, const stdfs::path& dir, const std::string& subdir, const IndexRecord& rec,
                     Verifier& verifier) {
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
            f = fs::open_untrusted_at(dirfd, fn, path);
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
        r = verifier.verify_digest_at(scan.sha256, dirfd, fn + ".sig", sig, path.string());
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
                     [&](std::size_t i) { pkg[i] = check_package(d.fd.get(), channel / s, s, recs[i], verifier); });
        found.packages = std::move(pkg);
    }
    return report;
}

}  // namespace condaguard
