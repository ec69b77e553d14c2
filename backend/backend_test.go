package backend

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTree builds files (paths relative to root) and returns root.
func fakeTree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("fake"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// rootsIn returns SearchRoots confined to root: home root/home, cache root/cache,
// site-packages root/sp, go-xla dirs root/home/.local/lib/go-xla and root/usr/go-xla,
// /dev at root/dev; no nvidia-smi.
func rootsIn(root string, env map[string]string, compiled ...string) SearchRoots {
	return SearchRoots{
		Getenv:       envMap(env),
		Home:         filepath.Join(root, "home"),
		Cache:        filepath.Join(root, "cache"),
		SitePackages: []string{filepath.Join(root, "sp")},
		GoXLADirs:    []string{filepath.Join(root, "home/.local/lib/go-xla"), filepath.Join(root, "usr/go-xla")},
		ORTDirs:      []string{filepath.Join(root, "home/.local/lib/onnxruntime")},
		DevDir:       filepath.Join(root, "dev"),
		Compiled:     compiled,
	}
}

const (
	cpuPluginRel  = "cache/pjrt-cpu/" + PJRTCPUVersion + "/pjrt_c_api_cpu_plugin.so"
	ortLibRel     = "cache/onnxruntime/" + ONNXRuntimeVersion + "/libonnxruntime.so"
	jaxCUDA12Rel  = "sp/jax_plugins/xla_cuda12/xla_cuda_plugin.so"
	jaxCUDA13Rel  = "sp/jax_plugins/xla_cuda13/xla_cuda_plugin.so"
	goXLACUDARel  = "usr/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"
	fakeGPUDevice = "dev/nvidia0"
)

func TestResolveBackend(t *testing.T) {
	all := []string{"go", "xla", "onnx", "onnxruntime"}
	tests := []struct {
		name       string
		files      []string
		configured string
		env        map[string]string
		compiled   []string
		want       string
		whyHas     string
	}{
		{name: "config wins over env", configured: "onnx:cpu", env: map[string]string{EnvBackend: "go"}, want: "onnx:cpu", whyHas: "config"},
		{name: "config normalised", configured: " xla ", want: "xla:cpu"},
		{name: "config plugin path kept", configured: "xla:/opt/p/pjrt_c_api_cpu_plugin.so,noshared_buffers", want: "xla:/opt/p/pjrt_c_api_cpu_plugin.so,noshared_buffers"},
		{name: "onnxruntime alias", configured: "onnxruntime", want: "onnx:cpu"},
		{name: "env used without config", env: map[string]string{EnvBackend: "xla:cuda"}, want: "xla:cuda", whyHas: EnvBackend},
		{name: "auto: xla cpu preferred", files: []string{cpuPluginRel, ortLibRel}, want: "xla:cpu", whyHas: "pjrt_c_api_cpu_plugin.so"},
		{name: "auto: onnx when no plugin", files: []string{ortLibRel}, want: "onnx:cpu", whyHas: "libonnxruntime.so"},
		{name: "auto: onnx via env library", files: []string{"elsewhere/libonnxruntime.so"}, env: map[string]string{EnvORTLibrary: "@/elsewhere/libonnxruntime.so"}, want: "onnx:cpu"},
		{name: "auto: xla not compiled", files: []string{cpuPluginRel, ortLibRel}, compiled: []string{"go", "onnx"}, want: "onnx:cpu", whyHas: "not compiled"},
		{name: "auto: onnx not compiled", files: []string{ortLibRel}, compiled: []string{"go", "xla"}, want: "go", whyHas: "WARNING"},
		{name: "auto: nothing installed", want: "go", whyHas: InstallPJRTCPU},
		{name: "auto: GPU and JAX plugin", files: []string{fakeGPUDevice, jaxCUDA12Rel, cpuPluginRel}, want: "xla:cuda", whyHas: "xla_cuda12"},
		{name: "auto: GPU without plugin falls back", files: []string{fakeGPUDevice, cpuPluginRel}, want: "xla:cpu", whyHas: "no CUDA PJRT plugin: looked in"},
		{name: "auto: plugin without GPU ignored", files: []string{jaxCUDA12Rel, cpuPluginRel}, want: "xla:cpu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files...)
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = strings.ReplaceAll(v, "@", root)
			}
			compiled := tc.compiled
			if compiled == nil {
				compiled = all
			}
			spec, why, err := Resolve(tc.configured, rootsIn(root, env, compiled...))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if spec != tc.want {
				t.Errorf("spec = %q, want %q (why: %s)", spec, tc.want, why)
			}
			if !strings.Contains(why, tc.whyHas) {
				t.Errorf("why = %q, want it to contain %q", why, tc.whyHas)
			}
		})
	}
}

func TestResolveBackendErrors(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct{ configured, env string }{
		{configured: "tpu"},
		{configured: "xla:relative/plugin.so"},
		{env: "nonsense:x"},
	} {
		_, _, err := Resolve(tc.configured, rootsIn(root, map[string]string{EnvBackend: tc.env}))
		if err == nil {
			t.Errorf("Resolve(%q, env %q): no error", tc.configured, tc.env)
		}
	}
}

func TestBackendConfig(t *testing.T) {
	root := fakeTree(t, cpuPluginRel, ortLibRel, jaxCUDA13Rel, "sp/nvidia/cu13/lib/")
	roots := rootsIn(root, nil)

	config, env, err := Config("xla:cpu,noshared_buffers", roots)
	if err != nil {
		t.Fatal(err)
	}
	if want := "xla:" + filepath.Join(root, cpuPluginRel) + ",noshared_buffers"; config != want {
		t.Errorf("xla:cpu config = %q, want %q", config, want)
	}
	if len(env) != 0 {
		t.Errorf("xla:cpu env = %v, want none", env)
	}

	config, env, err = Config("onnx", roots)
	if err != nil {
		t.Fatal(err)
	}
	if config != "onnx:cpu" || env[EnvORTLibrary] != filepath.Join(root, ortLibRel) {
		t.Errorf("onnx: config %q env %v", config, env)
	}

	if _, _, err = Config("xla:cuda", roots); err == nil {
		t.Error("xla:cuda without a GPU: no error")
	}
	roots.DevDir = filepath.Join(fakeTree(t, fakeGPUDevice), "dev")
	config, _, err = Config("xla:cuda", roots)
	if err != nil {
		t.Fatal(err)
	}
	if want := "xla:" + filepath.Join(root, jaxCUDA13Rel); config != want {
		t.Errorf("xla:cuda config = %q, want %q", config, want)
	}

	if config, _, err = Config("go", roots); err != nil || config != "go" {
		t.Errorf("go: %q, %v", config, err)
	}
}

func TestBackendConfigMissing(t *testing.T) {
	root := t.TempDir()
	roots := rootsIn(root, nil)
	for spec, mention := range map[string]string{
		"xla:cpu":                    InstallPJRTCPU,
		"onnx:cpu":                   InstallORT,
		"xla:cuda":                   "looked in",
		"xla:/nonexistent/plugin.so": "/nonexistent/plugin.so",
	} {
		_, _, err := Config(spec, roots)
		if err == nil {
			t.Errorf("%s: no error", spec)
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: error %v does not wrap ErrNotFound", spec, err)
		}
		if !strings.Contains(err.Error(), mention) {
			t.Errorf("%s: error %q does not mention %q", spec, err, mention)
		}
	}
}

func TestFindCPUPlugin(t *testing.T) {
	t.Run("cache", func(t *testing.T) {
		root := fakeTree(t, cpuPluginRel, "home/.local/lib/go-xla/pjrt_c_api_cpu_v0.114.0_plugin.so")
		got, _ := FindCPUPlugin(rootsIn(root, nil))
		if want := filepath.Join(root, cpuPluginRel); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("env dir first", func(t *testing.T) {
		root := fakeTree(t, cpuPluginRel, "mine/pjrt_c_api_cpu_plugin.so")
		got, _ := FindCPUPlugin(rootsIn(root, map[string]string{EnvPJRTPluginPath: filepath.Join(root, "nowhere") + ":" + filepath.Join(root, "mine")}))
		if want := filepath.Join(root, "mine/pjrt_c_api_cpu_plugin.so"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("go-xla versioned, newest", func(t *testing.T) {
		root := fakeTree(t, "usr/go-xla/pjrt_c_api_cpu_v0.98.0_plugin.so", "usr/go-xla/pjrt_c_api_cpu_v0.99.1_plugin.so")
		got, _ := FindCPUPlugin(rootsIn(root, nil))
		if want := filepath.Join(root, "usr/go-xla/pjrt_c_api_cpu_v0.99.1_plugin.so"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		root := t.TempDir()
		got, looked := FindCPUPlugin(rootsIn(root, nil))
		if got != "" || len(looked) == 0 {
			t.Errorf("got %q, looked %v", got, looked)
		}
	})
}

func TestFindCUDAPlugin(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		env     map[string]string
		want    string
		libDirs []string
	}{
		{
			name:    "JAX cuda13 before cuda12",
			files:   []string{jaxCUDA12Rel, jaxCUDA13Rel, "sp/nvidia/cu13/lib/", "sp/nvidia/cudnn/lib/", "sp/nvidia/README"},
			want:    jaxCUDA13Rel,
			libDirs: []string{"sp/nvidia/cu13/lib", "sp/nvidia/cudnn/lib"},
		},
		{
			name:    "JAX cuda12",
			files:   []string{jaxCUDA12Rel, "sp/nvidia/cublas/lib/"},
			want:    jaxCUDA12Rel,
			libDirs: []string{"sp/nvidia/cublas/lib"},
		},
		{
			name:  "env file wins over site-packages",
			files: []string{jaxCUDA13Rel, "opt/cuda_plugin/xla_cuda_plugin.so"},
			env:   map[string]string{EnvPJRTPluginPath: "@/opt/cuda_plugin/xla_cuda_plugin.so"},
			want:  "opt/cuda_plugin/xla_cuda_plugin.so",
		},
		{
			name:    "env dir",
			files:   []string{jaxCUDA13Rel, "opt/p/pjrt_c_api_cuda_plugin.so", "opt/p/nvidia/cu13/lib/"},
			env:     map[string]string{EnvPJRTPluginPath: "@/opt/p"},
			want:    "opt/p/pjrt_c_api_cuda_plugin.so",
			libDirs: []string{"opt/p/nvidia/cu13/lib"},
		},
		{
			name:  "GOMLX_BACKEND path",
			files: []string{jaxCUDA13Rel, "x/pjrt_c_api_cuda_plugin.so"},
			env:   map[string]string{EnvBackend: "xla:@/x/pjrt_c_api_cuda_plugin.so,preallocate=false"},
			want:  "x/pjrt_c_api_cuda_plugin.so",
		},
		{
			name:  "env cpu plugin is not a CUDA plugin",
			files: []string{jaxCUDA12Rel, "opt/pjrt_c_api_cpu_plugin.so"},
			env:   map[string]string{EnvPJRTPluginPath: "@/opt/pjrt_c_api_cpu_plugin.so"},
			want:  jaxCUDA12Rel,
		},
		{
			name:    "go-xla nvidia dir",
			files:   []string{goXLACUDARel, "usr/go-xla/nvidia/cu13/lib/"},
			want:    goXLACUDARel,
			libDirs: []string{"usr/go-xla/nvidia/cu13/lib"},
		},
		{
			name:  "home go-xla before /usr/local",
			files: []string{goXLACUDARel, "home/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"},
			want:  "home/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files...)
			env := map[string]string{}
			for k, v := range tc.env {
				env[k] = strings.ReplaceAll(v, "@", root)
			}
			path, libDirs, looked, err := FindCUDAPlugin(rootsIn(root, env))
			if err != nil {
				t.Fatalf("FindCUDAPlugin: %v", err)
			}
			if want := filepath.Join(root, tc.want); path != want {
				t.Errorf("path = %q, want %q", path, want)
			}
			var wantDirs []string
			for _, d := range tc.libDirs {
				wantDirs = append(wantDirs, filepath.Join(root, d))
			}
			if !slices.Equal(libDirs, wantDirs) {
				t.Errorf("libDirs = %v, want %v", libDirs, wantDirs)
			}
			if len(looked) == 0 || looked[len(looked)-1] != path {
				t.Errorf("looked = %v, want it to end with %q", looked, path)
			}
		})
	}

	t.Run("none", func(t *testing.T) {
		root := fakeTree(t, "sp/jax_plugins/other/x.so")
		_, _, looked, err := FindCUDAPlugin(rootsIn(root, nil))
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		for _, p := range []string{jaxCUDA13Rel, jaxCUDA12Rel, goXLACUDARel} {
			if !slices.Contains(looked, filepath.Join(root, p)) {
				t.Errorf("looked %v does not include %s", looked, p)
			}
			if !strings.Contains(err.Error(), filepath.Join(root, p)) {
				t.Errorf("error %q does not name %s", err, p)
			}
		}
	})
}

func TestHasGPU(t *testing.T) {
	root := fakeTree(t, "dev/null", "dev/nvidiactl")
	r := rootsIn(root, nil)
	if gpu, _ := r.HasGPU(); gpu {
		t.Error("nvidiactl alone is not a GPU")
	}
	r.NvidiaSMI = func() bool { return true }
	if gpu, how := r.HasGPU(); !gpu || how != "nvidia-smi" {
		t.Errorf("HasGPU with nvidia-smi = %v, %q", gpu, how)
	}
	root = fakeTree(t, fakeGPUDevice)
	if gpu, how := rootsIn(root, nil).HasGPU(); !gpu || !strings.HasSuffix(how, "nvidia0") {
		t.Errorf("HasGPU with /dev/nvidia0 = %v, %q", gpu, how)
	}
}

// TestNewBackend uses the real registry: "go" always works; "xla:cpu" with an
// empty cache must fail naming the installer, and is created for real when
// the plugin is installed (scripts/install-pjrt-cpu.sh).
func TestNewBackend(t *testing.T) {
	b, err := New("go")
	if err != nil {
		t.Fatalf(`New("go"): %v`, err)
	}
	b.Finalize()

	if _, err := New("tpu"); err == nil {
		t.Error(`New("tpu"): no error`)
	}

	installed, _ := FindCPUPlugin(DefaultSearchRoots())

	t.Run("missing plugin", func(t *testing.T) {
		t.Setenv("HOME", t.TempDir())
		t.Setenv(EnvCache, t.TempDir())
		t.Setenv(EnvPJRTPluginPath, "")
		_, err := New("xla:cpu")
		if err == nil || !strings.Contains(err.Error(), InstallPJRTCPU) {
			t.Errorf(`New("xla:cpu") with no plugin: %v; want an error naming %s`, err, InstallPJRTCPU)
		}
	})

	t.Run("installed plugin", func(t *testing.T) {
		if installed == "" {
			t.Skipf("no XLA CPU plugin installed (run %s)", InstallPJRTCPU)
		}
		if !DefaultSearchRoots().isCompiled("xla") {
			t.Skip("xla backend not compiled in (cgo disabled or -tags noxla)")
		}
		b, err := New("xla:cpu")
		if err != nil {
			t.Fatalf(`New("xla:cpu"): %v`, err)
		}
		defer b.Finalize()
		if b.Name() != "xla" {
			t.Errorf("Name() = %q", b.Name())
		}
	})
}

// TestCheckCUDAMessage is what `make train-gpu` prints on a machine without
// a GPU or plugin: one "no GPU/plugin found: looked in ..." message naming
// the GPU checks, every plugin location and the install command.
func TestCheckCUDAMessage(t *testing.T) {
	smiCalled := false
	tests := []struct {
		name           string
		files          []string
		smi            bool
		wantHas        []string
		wantNot        []string
		wantPluginPath string
	}{
		{
			name:  "no GPU, no plugin",
			files: []string{"dev/null"},
			wantHas: []string{"no GPU/plugin found: looked in", "dev/nvidia[0-9]*", "nvidia-smi -L", "no NVIDIA GPU",
				"$" + EnvPJRTPluginPath + " (unset)", jaxCUDA13Rel, jaxCUDA12Rel, goXLACUDARel,
				"cache/pjrt-cuda/" + PJRTCUDAVersion + "/nvidia/pjrt_c_api_cuda_plugin.so", InstallPJRTCUDA},
		},
		{
			name:    "GPU, no plugin",
			files:   []string{fakeGPUDevice},
			wantHas: []string{"no GPU/plugin found: looked in", "GPU: found", jaxCUDA13Rel, InstallPJRTCUDA},
			wantNot: []string{"no NVIDIA GPU"},
		},
		{
			name:    "plugin, no GPU",
			files:   []string{jaxCUDA13Rel},
			wantHas: []string{"no GPU/plugin found: looked in", "no NVIDIA GPU", "CUDA PJRT plugin: found", jaxCUDA13Rel},
			wantNot: []string{InstallPJRTCUDA},
		},
		{name: "GPU via nvidia-smi and plugin", files: []string{jaxCUDA13Rel}, smi: true, wantPluginPath: jaxCUDA13Rel},
		{name: "GPU and installer cache", files: []string{fakeGPUDevice, "cache/pjrt-cuda/" + PJRTCUDAVersion + "/nvidia/pjrt_c_api_cuda_plugin.so"},
			wantPluginPath: "cache/pjrt-cuda/" + PJRTCUDAVersion + "/nvidia/pjrt_c_api_cuda_plugin.so"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, tc.files...)
			roots := rootsIn(root, nil)
			roots.NvidiaSMI = func() bool { smiCalled = true; return tc.smi }
			plugin, _, err := CheckCUDA(roots)
			if tc.wantPluginPath != "" {
				if err != nil || plugin != filepath.Join(root, tc.wantPluginPath) {
					t.Fatalf("CheckCUDA = %q, %v; want %s", plugin, err, tc.wantPluginPath)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error (plugin %q)", plugin)
			}
			var nc *NoCUDAError
			if !errors.As(err, &nc) || !errors.Is(err, ErrNotFound) {
				t.Errorf("error %T does not wrap *NoCUDAError / ErrNotFound", err)
			}
			// The same message through Config, i.e. New and experiment.Train.
			_, _, berr := Config("xla:cuda", roots)
			if berr == nil || !strings.Contains(berr.Error(), err.Error()) {
				t.Errorf("Config(xla:cuda) = %v, want it to carry %q", berr, err)
			}
			msg := err.Error()
			for _, w := range tc.wantHas {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not contain %q:\n%s", w, msg)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(msg, w) {
					t.Errorf("message contains %q:\n%s", w, msg)
				}
			}
		})
	}
	if !smiCalled {
		t.Error("nvidia-smi check never consulted")
	}
}

// TestNewBackendCUDAHere: on a machine without a GPU (CI, this one) "xla:cuda"
// fails with the "no GPU/plugin found" message instead of a plugin crash.
func TestNewBackendCUDAHere(t *testing.T) {
	if gpu, _ := DefaultSearchRoots().HasGPU(); gpu {
		t.Skip("this machine has a GPU")
	}
	_, err := New("xla:cuda")
	if err == nil || !strings.Contains(err.Error(), "no GPU/plugin found: looked in") || !strings.Contains(err.Error(), "/dev/nvidia[0-9]*") {
		t.Fatalf(`New("xla:cuda") = %v; want "no GPU/plugin found: looked in /dev/nvidia[0-9]* ..."`, err)
	}
}

func TestWithGPUOptions(t *testing.T) {
	for _, tc := range []struct {
		spec string
		o    GPUOptions
		want string
	}{
		{"xla:cuda", DefaultGPUOptions(), "xla:cuda,preallocate=false,tf32=true"},
		{"xla:cuda", GPUOptions{Preallocate: true, MemoryFraction: 0.5}, "xla:cuda,preallocate=true,memory_fraction=0.5,tf32=false"},
		{"xla:cuda,preallocate=true", DefaultGPUOptions(), "xla:cuda,preallocate=true,tf32=true"},
		{"xla:cuda,notf32", DefaultGPUOptions(), "xla:cuda,notf32,preallocate=false"},
		{"xla:/opt/jax_plugins/xla_cuda13/xla_cuda_plugin.so", GPUOptions{}, "xla:/opt/jax_plugins/xla_cuda13/xla_cuda_plugin.so,preallocate=false,tf32=false"},
		{"xla:cpu", DefaultGPUOptions(), "xla:cpu"},
		{"xla:/opt/pjrt_c_api_cpu_plugin.so", DefaultGPUOptions(), "xla:/opt/pjrt_c_api_cpu_plugin.so"},
		{"go", DefaultGPUOptions(), "go"},
		{"onnx:cpu", DefaultGPUOptions(), "onnx:cpu"},
	} {
		if got := WithGPUOptions(tc.spec, tc.o); got != tc.want {
			t.Errorf("WithGPUOptions(%q, %+v) = %q, want %q", tc.spec, tc.o, got, tc.want)
		}
	}
}

func TestCUDADataDirFlag(t *testing.T) {
	root := fakeTree(t, "nv/cu13/lib/", "nv/cu13/nvvm/libdevice/libdevice.10.bc", "nv/cudnn/lib/")
	libs := []string{filepath.Join(root, "nv/cudnn/lib"), filepath.Join(root, "nv/cu13/lib")}
	got, ok := cudaDataDirFlag("--xla_dump_to=/tmp/x", libs)
	if want := "--xla_dump_to=/tmp/x --xla_gpu_cuda_data_dir=" + filepath.Join(root, "nv/cu13"); !ok || got != want {
		t.Errorf("got %q, %v; want %q", got, ok, want)
	}
	if _, ok := cudaDataDirFlag("--xla_gpu_cuda_data_dir=/usr/local/cuda", libs); ok {
		t.Error("an explicit --xla_gpu_cuda_data_dir must be kept")
	}
	if _, ok := cudaDataDirFlag("", libs[:1]); ok {
		t.Error("no nvvm/libdevice: no flag")
	}
}

func TestSitePackagesFromPATH(t *testing.T) {
	root := fakeTree(t, "venv/bin/python3", "venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so")
	r := SearchRoots{Getenv: envMap(map[string]string{"PATH": "/nonexistent/bin:" + filepath.Join(root, "venv/bin")})}
	dirs := defaultSitePackages(r)
	if want := filepath.Join(root, "venv/lib/python3.12/site-packages"); !slices.Contains(dirs, want) {
		t.Errorf("site-packages %v does not include %s", dirs, want)
	}
}

// torchVenv is the layout of a GPU image with PyTorch and JAX in a venv
// (/opt/torch/.venv): jax-cuda13-pjrt 0.11.2 (jax_plugins/xla_cuda13, as
// listed in the wheel) and the CUDA 13 NVIDIA wheels (nvidia/cu13,
// nvidia/cudnn, nvidia/nccl, ... in site-packages).
var torchVenv = []string{
	"opt/torch/.venv/pyvenv.cfg",
	"opt/torch/.venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/__init__.py",
	"opt/torch/.venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/version.py",
	"opt/torch/.venv/lib/python3.12/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so",
	"opt/torch/.venv/lib/python3.12/site-packages/jax_cuda13_pjrt-0.11.2.dist-info/RECORD",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/bin/ptxas",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/nvvm/libdevice/libdevice.10.bc",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
	"opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2",
	"opt/torch/.venv/lib/python3.12/site-packages/torch/__init__.py",
	"usr/bin/python3.12",
	"dev/nvidia0",
}

// TestFindCUDAPluginInTorchVenv: a node whose python3 has JAX's CUDA plugin
// in /opt/torch/.venv needs no install, whether that venv's bin is on
// $PATH, python3 on $PATH links into it, or neither (a well-known prefix).
func TestFindCUDAPluginInTorchVenv(t *testing.T) {
	const sp = "opt/torch/.venv/lib/python3.12/site-packages"
	for _, tc := range []struct {
		name string
		path func(root string) string // $PATH
		pref bool                     // search the well-known prefixes
	}{
		{"venv bin on PATH", func(root string) string { return filepath.Join(root, "opt/torch/.venv/bin") }, false},
		{"python3 on PATH links into the venv", func(root string) string { return filepath.Join(root, "usr/local/bin") }, false},
		{"venv not on PATH", func(root string) string { return filepath.Join(root, "usr/bin") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeTree(t, torchVenv...)
			// bin/python3 of a venv links to the base interpreter; /usr/local/bin/python3 into the venv.
			link(t, filepath.Join(root, "usr/bin/python3.12"), filepath.Join(root, "opt/torch/.venv/bin/python3"))
			link(t, filepath.Join(root, "opt/torch/.venv/bin/python3"), filepath.Join(root, "usr/local/bin/python3"))
			link(t, "python3.12", filepath.Join(root, "usr/bin/python3"))
			r := SearchRoots{
				Getenv: envMap(map[string]string{"PATH": "/nonexistent/bin:" + tc.path(root)}),
				DevDir: filepath.Join(root, "dev"), Compiled: []string{"go", "xla"},
			}
			if tc.pref {
				r.PythonPrefixes = []string{filepath.Join(root, "opt/*/.venv")}
			}
			r.SitePackages = defaultSitePackages(r)
			plugin, libDirs, looked, err := FindCUDAPlugin(r)
			if want := filepath.Join(root, sp, "jax_plugins/xla_cuda13/xla_cuda_plugin.so"); err != nil || plugin != want {
				t.Fatalf("FindCUDAPlugin = %q, %v; want %s (site-packages %v, looked %v)", plugin, err, want, r.SitePackages, looked)
			}
			for _, d := range []string{"nvidia/cu13/lib", "nvidia/cudnn/lib", "nvidia/nccl/lib"} {
				if !slices.Contains(libDirs, filepath.Join(root, sp, d)) {
					t.Errorf("libDirs %v lack %s", libDirs, d)
				}
			}
			// Automatic choice and the config string: xla:cuda on that plugin, with
			// XLA pointed at the wheel's CUDA tree (nvvm/libdevice for ptx compilation).
			spec, why, err := Resolve("", r)
			if err != nil || spec != "xla:cuda" {
				t.Fatalf("Resolve = %q (%s), %v; want xla:cuda", spec, why, err)
			}
			config, env, err := Config(spec, r)
			if err != nil || config != "xla:"+plugin {
				t.Fatalf("Config = %q, %v", config, err)
			}
			if want := "--xla_gpu_cuda_data_dir=" + filepath.Join(root, sp, "nvidia/cu13"); env[EnvXLAFlags] != want {
				t.Errorf("XLA_FLAGS = %q, want %q", env[EnvXLAFlags], want)
			}
		})
	}
}

func link(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
