using System.ComponentModel;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNet.Align.Tests.Search;

/// <summary>
/// A real PostgreSQL with pgvector for the tests: PGlite (PostgreSQL compiled to WebAssembly) served on the wire
/// protocol by tests/pglite/server.mjs on a free local port. Installs its npm packages (npm ci, locked versions) on first
/// use. Needs node 20+ and npm on PATH: without them the tests fail with a message saying so, they are not skipped.
/// PGlite is one backend: the socket server runs one statement at a time and a transaction's statements together.
/// </summary>
public sealed partial class PgliteServer : IDisposable
{
    private readonly Process _node;
    private readonly StringBuilder _log = new();

    public PgliteServer()
    {
        string dir = FindServerFolder();
        if (!Directory.Exists(Path.Combine(dir, "node_modules", "@electric-sql", "pglite-socket")))
            RunOrFail(Npm, "ci --no-audit --no-fund", dir, TimeSpan.FromMinutes(5), "install the PGlite test server's packages (npm ci in tests/pglite)");
        var psi = new ProcessStartInfo("node") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("server.mjs");
        psi.ArgumentList.Add("0"); // the OS picks a free port; the ready line names it
        _node = StartOrFail(psi, "start the PGlite test server");
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _node.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) { ready.TrySetException(new InvalidOperationException($"The PGlite test server exited before it was ready:\n{Log}")); return; }
            lock (_log) _log.AppendLine(e.Data);
            if (e.Data.StartsWith("PGLITE READY", StringComparison.Ordinal)) ready.TrySetResult(e.Data);
        };
        _node.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_log) _log.AppendLine(e.Data); };
        _node.BeginOutputReadLine();
        _node.BeginErrorReadLine();
        if (!ready.Task.Wait(TimeSpan.FromMinutes(2)))
        {
            Dispose();
            throw new TimeoutException($"The PGlite test server did not print its ready line within 2 minutes:\n{Log}");
        }
        var m = ReadyLine().Match(ready.Task.Result);
        Port = int.Parse(m.Groups[1].Value);
        VectorVersion = m.Groups[2].Value;
    }

    /// <summary>The local port the server listens on.</summary>
    public int Port { get; }
    /// <summary>pgvector's version as the server reports it.</summary>
    public string VectorVersion { get; }
    /// <summary>What the server printed so far.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>A small pool (the server runs one statement at a time and keeps a client's transaction to itself), no TLS
    /// (the socket server answers no to it).</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Password=postgres;Database=postgres;SSL Mode=Disable;Maximum Pool Size=2;Timeout=30;Command Timeout=120";

    private static string Npm => OperatingSystem.IsWindows() ? "npm.cmd" : "npm";

    /// <summary>tests/pglite, found by walking up from the test assembly to the repository root.</summary>
    private static string FindServerFolder()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "pglite");
            if (File.Exists(Path.Combine(candidate, "server.mjs"))) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/pglite/server.mjs was not found above {AppContext.BaseDirectory}: the PostgreSQL tests run from a checkout of the repository.");
    }

    private static Process StartOrFail(ProcessStartInfo psi, string what)
    {
        try { return Process.Start(psi) ?? throw new InvalidOperationException($"Could not {what}: '{psi.FileName}' did not start."); }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"Could not {what}: '{psi.FileName}' was not found on PATH ({e.Message}). The PostgreSQL backend's tests need Node.js 20+ and npm (they run PostgreSQL + pgvector as PGlite); install them, e.g. apt-get install nodejs npm.", e);
        }
    }

    private static void RunOrFail(string file, string args, string dir, TimeSpan timeout, string what)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = StartOrFail(psi, what);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"Could not {what}: {file} {args} took over {timeout.TotalMinutes} minutes.");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"Could not {what}: {file} {args} exited with {p.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
    }

    public void Dispose()
    {
        try
        {
            if (!_node.HasExited)
            {
                _node.StandardInput.Close(); // the server stops when its stdin closes
                if (!_node.WaitForExit(5000)) _node.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException) { }
        _node.Dispose();
    }

    [GeneratedRegex(@"port=(\d+) vector=(\S+)")] private static partial Regex ReadyLine();
}

[CollectionDefinition("pglite")]
public sealed class PgliteCollection : ICollectionFixture<PgliteServer>;
