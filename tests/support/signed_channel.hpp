// An environment's package moved into a signed channel, for `audit --online`
// (header only: the test support library does not depend on channel/).
#pragma once

#include "prefix.hpp"

#include <condaguard/channel/publish.hpp>
#include <condaguard/sys/time.hpp>
#include <condaguard/trust/key_name.hpp>

#include <nlohmann/json.hpp>

namespace condaguard::test {

// Copies p's archive from env's package directory into CHANNEL/linux-64,
// indexes CHANNEL signed by env's key "tester" as channel id "demo", points
// p's record (url, channel) there, and removes the archive from the package
// directory: only the signed index can vouch for the record now.
inline void move_to_signed_channel(const TestEnv& env, const EnvPackage& p, const stdfs::path& channel) {
    stdfs::create_directories(channel / "linux-64");
    stdfs::copy_file(env.pkgs() / p.fn(), channel / "linux-64" / p.fn());
    index_channel(channel, IndexOptions{.jobs = 1,
                                        .signing = IndexSigning{.key_name = KeyName("tester"),
                                                                .key = &env.key(),
                                                                .channel_id = "demo",
                                                                .signed_at = system_now()}});
    nlohmann::json rec = env.read_record(p);
    rec["url"] = "file://" + (channel / "linux-64" / p.fn()).string();
    rec["channel"] = "file://" + (channel / "linux-64").string();
    env.write_record(p, rec);
    stdfs::remove(env.pkgs() / p.fn());
}

}  // namespace condaguard::test
