// cnidriver runs network configuration lists through Debian's libcni 1.1.2,
// the library containerd and CRI-O are built on, so the tests exercise the
// plugin the way a real runtime does (Debian ships no cnitool).
//
// Usage:
//
//	cnidriver version <plugin-type>
//	cnidriver validate <net>
//	cnidriver add|check|del <net> <netns>
//
// Environment: NETCONFPATH (config dir), CNI_PATH (plugin dirs, ':'),
// CNI_CONTAINERID, CNI_IFNAME (default eth0), CNI_ARGS (K=V;...),
// CAP_ARGS (JSON object of capability args), CNI_CACHE_DIR.
//
// Built offline in GOPATH mode: GO111MODULE=off GOPATH=<this dir>:/usr/share/gocode.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "cnidriver: "+format+"\n", a...)
	os.Exit(1)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func runtimeConf(netns string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID:    env("CNI_CONTAINERID", "cnidriver-0"),
		NetNS:          netns,
		IfName:         env("CNI_IFNAME", "eth0"),
		CacheDir:       os.Getenv("CNI_CACHE_DIR"),
		CapabilityArgs: map[string]interface{}{},
	}
	if args := os.Getenv("CNI_ARGS"); args != "" {
		for _, pair := range strings.Split(args, ";") {
			kv := strings.SplitN(pair, "=", 2)
			if len(kv) != 2 || kv[0] == "" {
				die("invalid CNI_ARGS pair %q", pair)
			}
			rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
		}
	}
	if caps := os.Getenv("CAP_ARGS"); caps != "" {
		if err := json.Unmarshal([]byte(caps), &rt.CapabilityArgs); err != nil {
			die("invalid CAP_ARGS: %v", err)
		}
	}
	return rt
}

func main() {
	if len(os.Args) < 3 {
		die("usage: cnidriver version <type> | validate <net> | add|check|del <net> <netns>")
	}
	ctx := context.Background()
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cni := libcni.NewCNIConfigWithCacheDir(paths, os.Getenv("CNI_CACHE_DIR"), nil)
	cmd, target := os.Args[1], os.Args[2]
	if cmd == "version" {
		info, err := cni.GetVersionInfo(ctx, target)
		if err != nil {
			die("version %s: %v", target, err)
		}
		out, _ := json.Marshal(info.SupportedVersions())
		fmt.Println(string(out))
		return
	}
	list, err := libcni.LoadConfList(env("NETCONFPATH", "/etc/cni/net.d"), target)
	if err != nil {
		die("load %s: %v", target, err)
	}
	switch cmd {
	case "validate":
		caps, err := cni.ValidateNetworkList(ctx, list)
		if err != nil {
			die("validate: %v", err)
		}
		out, _ := json.Marshal(caps)
		fmt.Println(string(out))
	case "add", "check", "del":
		if len(os.Args) < 4 {
			die("%s needs <net> <netns>", cmd)
		}
		rt := runtimeConf(os.Args[3])
		switch cmd {
		case "add":
			res, err := cni.AddNetworkList(ctx, list, rt)
			if err != nil {
				die("add: %v", err)
			}
			if err := res.PrintTo(os.Stdout); err != nil {
				die("print: %v", err)
			}
		case "check":
			if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
				die("check: %v", err)
			}
		case "del":
			if err := cni.DelNetworkList(ctx, list, rt); err != nil {
				die("del: %v", err)
			}
		}
	default:
		die("unknown command %q", cmd)
	}
}
