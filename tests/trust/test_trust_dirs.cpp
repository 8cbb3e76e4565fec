// Where trust lives (threat A6: the keys and state directories and their
// ancestors), how keys are stored (no NAME.pub), and that new signatures
// never use keys under 2048 bits (threat A18), through the library and
// through the commands.
#include <condaguard/trust/sigfile.hpp>
#include <condaguard/trust/signer.hpp>
#include <condaguard/trust/verifier.hpp>

#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace condaguard;
using namespace condaguard::test;

namespace {

constexpr uid_t other_uid = 12345;

void set_mode(const stdfs::path& p, mode_t m) {
    if (::chmod(p.c_str(), m) != 0) throw std::runtime_error("chmod " + p.string());
}

void give_away(const stdfs::path& p) {
    if (::lchown(p.c_str(), other_uid, other_uid) != 0) throw std::runtime_error("lchown " + p.string());
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Runs `f`, expects VerdictError BAD_KEY whose message contains `fragment`.
template <class F>
void expect_bad_key(F f, const std::string& fragment) {
    try {
        f();
        ADD_FAILURE() << "accepted; expected BAD_KEY with: " << fragment;
    } catch (const VerdictError& e) {
        EXPECT_EQ(e.verdict(), Verdict::BadKey) << e.what();
        EXPECT_TRUE(contains(e.what(), fragment)) << e.what() << "\nwanted: " << fragment;
    }
}

// Every reader and writer of the keys directory refuses it, naming `fragment`.
void expect_keys_dir_refused(const stdfs::path& keys, const std::string& fragment) {
    KeyStore store(keys);
    expect_bad_key([&] { store.load_public(KeyName("MyKey")); }, fragment);
    expect_bad_key([&] { store.load_private(KeyName("MyKey")); }, fragment);
    expect_bad_key([&] { store.private_key_names(); }, fragment);
    expect_bad_key([&] { store.public_key_names(); }, fragment);
    expect_bad_key([&] { store.store(KeyName("Other"), cached_key(KeyType::Rsa, 2048), false); }, fragment);
    EXPECT_FALSE(stdfs::exists(keys / "Other"));
    const stdfs::path file = keys.parent_path() / "signed.conda";
    write_file(file, "bytes");
    write_file(file.string() + ".sig", format_sig_file(KeyName("MyKey"), std::vector<unsigned char>(256, 1)));
    Verifier v(store);
    const Result r = v.verify_file(file);
    EXPECT_EQ(r.verdict, Verdict::BadKey) << r.reason;
    EXPECT_TRUE(contains(r.reason, fragment)) << r.reason;
}

}  // namespace

TEST(TrustDirs, A6_group_writable_ancestor_of_keys_dir_is_bad_key) {
    Keys k;
    k.add("MyKey");
    set_mode(k.dir.path(), 0770);
    if (!give_group_away(k.dir.path())) GTEST_SKIP() << "chgrp to a shared group needs root";
    expect_keys_dir_refused(k.keys(), "keys directory " + k.keys().string() + " is not safe: " +
                                          k.dir.path().string() + " is writable by group or others (mode 0770)");
    set_mode(k.dir.path(), 0700);
    EXPECT_NO_THROW(KeyStore(k.keys()).load_public(KeyName("MyKey")));
}

TEST(TrustDirs, A6_world_writable_keys_dir_is_bad_key_everywhere) {
    Keys k;
    k.add("MyKey");
    set_mode(k.keys(), 0777);
    expect_keys_dir_refused(k.keys(), "keys directory " + k.keys().string() + " is writable by group or others");
}

TEST(TrustDirs, A6_keys_dir_owned_by_another_user_is_bad_key) {
    if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
    Keys k;
    k.add("MyKey");
    give_away(k.keys());
    expect_keys_dir_refused(k.keys(), "owned by uid 12345, not by you or root");
}

TEST(TrustDirs, A6_symlinked_keys_dir_is_checked_where_it_leads) {
    Keys k;
    k.add("MyKey");
    // A link to a safe directory is a safe directory.
    const stdfs::path linked = k.dir / "linked-keys";
    stdfs::create_symlink(k.keys(), linked);
    EXPECT_EQ(KeyStore(linked).load_public(KeyName("MyKey")).fingerprint(),
              cached_key(KeyType::Rsa, 2048).public_key().fingerprint());
    // A link into a world-writable place names that place.
    const stdfs::path open = k.dir / "open";
    stdfs::create_directories(open / "keys");
    set_mode(open / "keys", 0700);
    stdfs::copy(k.keys() / "MyKey", open / "keys" / "MyKey");
    stdfs::copy(k.keys() / "MyKey.pub", open / "keys" / "MyKey.pub");
    set_mode(open, 0777);
    const stdfs::path planted = k.dir / "planted-keys";
    stdfs::create_symlink(open / "keys", planted);
    expect_keys_dir_refused(planted, open.string() + " is writable by group or others (mode 0777)");
}

TEST(TrustDirs, StoreCreatesMissingKeysDirPrivately) {
    TempDir t;
    KeyStore store(t / "home" / ".conda" / "keys");
    store.store(KeyName("MyKey"), cached_key(KeyType::Rsa, 2048), false);
    EXPECT_EQ(file_mode(t / "home" / ".conda" / "keys"), 0700u);
    EXPECT_EQ(file_mode(t / "home" / ".conda") & 022, 0u);
}

TEST(TrustDirs, StoreRefusesNamesEndingInPub) {
    Keys k;
    k.add("MyKey");
    KeyStore store(k.keys());
    for (const char* name : {"MyKey.pub", "new.pub"}) {
        EXPECT_THROW(store.check_can_store(KeyName(name), false), std::invalid_argument) << name;
        EXPECT_THROW(store.check_can_store(KeyName(name), true), std::invalid_argument) << name;
        EXPECT_THROW(store.store(KeyName(name), cached_key(KeyType::Rsa, 2048, 1), true), std::invalid_argument);
    }
    EXPECT_FALSE(stdfs::exists(k.keys() / "new.pub"));
    EXPECT_FALSE(stdfs::exists(k.keys() / "MyKey.pub.pub"));
    EXPECT_EQ(read_file(k.keys() / "MyKey.pub"), cached_key(KeyType::Rsa, 2048).public_key().to_pem());
    EXPECT_THROW(store.check_can_store(KeyName("MyKey"), false), std::runtime_error);
    EXPECT_NO_THROW(store.check_can_store(KeyName("MyKey"), true));
    EXPECT_NO_THROW(store.check_can_store(KeyName("fresh"), false));
}

TEST(TrustDirs, A18_no_new_signature_under_2048_bits_whatever_the_policy) {
    Keys k;
    k.add("old", KeyType::Rsa, 1024);
    const KeyStore store(k.keys(), KeyPolicy{.min_rsa_bits = 1024});
    const PrivateKey old = store.load_private(KeyName("old"));  // readable under the lowered floor
    const stdfs::path file = k.dir / "new.conda";
    write_file(file, "new package");
    expect_bad_key([&] { sign_file(file, KeyName("old"), old); },
                   "RSA key is 1024 bits; new signatures need at least 2048");
    EXPECT_FALSE(stdfs::exists(file.string() + ".sig"));
    expect_bad_key([&] { old.sign_digest(sha256_bytes("x")); }, "new signatures need at least 2048");
    EXPECT_THROW(PrivateKey::generate(KeyType::Rsa, 1024), std::invalid_argument);
    EXPECT_THROW(PrivateKey::generate(KeyType::Rsa, max_rsa_bits + 1), std::invalid_argument);
    // Old signatures by it still verify under the lowered floor.
    write_file(file.string() + ".sig",
               format_sig_file(KeyName("old"), raw_rsa_sign(old, sha256_bytes("new package"), RawScheme::Pss)));
    Verifier v(store);
    EXPECT_EQ(v.verify_file(file).verdict, Verdict::Valid);
}

TEST(TrustDirs, A18_conda_sign_min_key_bits_never_signs_with_a_small_key) {
    Keys k;
    k.add("old", KeyType::Rsa, 1024);
    const stdfs::path file = k.dir / "new.conda";
    write_file(file, "new package");
    const RunResult r = run_isolated(conda_sign_exe(),
                                     {"--keys-dir", k.keys().string(), "--min-key-bits", "1024", "-i", "old",
                                      file.string()},
                                     k.dir.path());
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "BAD_KEY")) << r.err;
    EXPECT_TRUE(contains(r.err, "new signatures need at least 2048")) << r.err;
    EXPECT_FALSE(contains(r.out, "Using private key")) << r.out;
    EXPECT_FALSE(stdfs::exists(file.string() + ".sig"));
    const RunResult g = run_isolated(conda_sign_exe(),
                                     {"--keys-dir", k.keys().string(), "--min-key-bits", "1024", "--keygen", "small",
                                      "--size", "1024"},
                                     k.dir.path());
    EXPECT_EQ(g.status, 2);
    EXPECT_TRUE(contains(g.err, "refused for new keys")) << g.err;
    EXPECT_FALSE(stdfs::exists(k.keys() / "small"));
}

TEST(TrustDirs, Conda_sign_keygen_refuses_before_generating) {
    Keys k;
    k.add("MyKey");
    const std::string before = read_file(k.keys() / "MyKey");
    for (const char* name : {"MyKey", "Other.pub"}) {
        const RunResult r = run_isolated(conda_sign_exe(), {"--keys-dir", k.keys().string(), "--keygen", name},
                                         k.dir.path());
        EXPECT_EQ(r.status, 2) << name << r.err;
        EXPECT_FALSE(contains(r.out, "Generating")) << name << ": " << r.out;
        EXPECT_TRUE(contains(r.err, name)) << r.err;
    }
    EXPECT_EQ(read_file(k.keys() / "MyKey"), before);
    EXPECT_FALSE(stdfs::exists(k.keys() / "Other.pub"));
    EXPECT_FALSE(stdfs::exists(k.keys() / "Other.pub.pub"));
}

// ------------------------------------------------------------- state (A6)
// The state directory guards against rollback; it is read through the
// command, as the channel library is not linked here.

namespace {

RunResult guard_state(const TempDir& home, const stdfs::path& state, std::vector<std::string> action) {
    std::vector<std::string> args{"state"};
    args.insert(args.end(), action.begin(), action.end());
    args.insert(args.end(), {"--state-dir", state.string()});
    return run_isolated(conda_guard_exe(), args, home.path());
}

}  // namespace

TEST(TrustDirs, A6_unsafe_state_dir_is_refused) {
    TempDir t;
    const stdfs::path state = t / "guard";
    EXPECT_EQ(guard_state(t, state, {"show"}).status, 0) << "a missing state dir is an empty state";
    stdfs::create_directories(state);
    set_mode(state, 0700);
    EXPECT_EQ(guard_state(t, state, {"show"}).status, 0);

    set_mode(state, 0777);
    for (auto action : {std::vector<std::string>{"show"}, std::vector<std::string>{"reset", "ch"}}) {
        const RunResult r = guard_state(t, state, action);
        EXPECT_EQ(r.status, 2) << action[0];
        EXPECT_TRUE(contains(r.err, "state directory " + state.string() + " is writable by group or others"))
            << r.err;
    }
    set_mode(state, 0700);
    set_mode(t.path(), 0750 | S_IWGRP);
    if (!give_group_away(t.path())) GTEST_SKIP() << "chgrp to a shared group needs root";
    const RunResult r = guard_state(t, state, {"show"});
    set_mode(t.path(), 0700);
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, t.path().string() + " is writable by group or others")) << r.err;
}

TEST(TrustDirs, A6_writable_or_foreign_state_files_are_refused) {
    Deadline d(30);
    TempDir t;
    const stdfs::path state = t / "guard";
    stdfs::create_directories(state);
    set_mode(state, 0700);
    write_file(state / "state.json", R"({"format": 1, "channels": {}, "locations": {}})", 0600);
    EXPECT_EQ(guard_state(t, state, {"show"}).status, 0);

    set_mode(state / "state.json", 0666);
    RunResult r = guard_state(t, state, {"show"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, (state / "state.json").string() + " is writable by group or others")) << r.err;
    set_mode(state / "state.json", 0600);

    write_file(state / "state.lock", "", 0620);
    if (!give_group_away(state / "state.lock")) GTEST_SKIP() << "chgrp to a shared group needs root";
    r = guard_state(t, state, {"reset", "ch"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, (state / "state.lock").string() + " is writable by group or others")) << r.err;
    set_mode(state / "state.lock", 0600);

    if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
    give_away(state / "state.json");
    r = guard_state(t, state, {"show"});
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(contains(r.err, (state / "state.json").string() + " is owned by uid 12345")) << r.err;
}
