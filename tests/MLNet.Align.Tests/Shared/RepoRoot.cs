namespace MLNet.Align.Tests.Shared;

/// <summary>The repository checkout the tests run from: the folder holding MLNet.Align.sln (and README.md, docs/)
/// above the test assembly.</summary>
internal static class RepoRoot
{
    /// <summary>The folder's full path.</summary>
    /// <exception cref="DirectoryNotFoundException">No MLNet.Align.sln above the test folder.</exception>
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "MLNet.Align.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"MLNet.Align.sln not found above {AppContext.BaseDirectory}.");
    }
}
