using System.CommandLine;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Cli.Commands;

/// <summary><c>mlnet-align digest STORE</c>: prints a layout-independent content digest of an embedding store, to check
/// that a merged store of partitions holds the same rows and embeddings as a one-process store.</summary>
public sealed class DigestCommand : ICliCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var store = new Argument<DirectoryInfo>("store") { Description = "Embedding store folder." };
        var cmd = new Command("digest", "Print a layout-independent SHA-256 of an embedding store's rows (index, image, caption, pooled embeddings).");
        cmd.Arguments.Add(store);
        cmd.SetAction((p, ct) => Task.Run(() => CliErrors.Run(() =>
        {
            var s = EmbeddingStore.Open(p.GetValue(store)!.FullName);
            Console.WriteLine($"{EmbeddingStoreDigest.Compute(s, ct)}  {s.Directory} ({s.Rows} rows)");
            return 0;
        })));
        return cmd;
    }
}
