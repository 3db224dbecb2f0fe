using MLNet.Align.Demo.Data;
using SkiaSharp;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Tests.Datasets;

public class ImageFolderDatasetTests
{
    [Fact]
    public void Load_DerivesClassNamesFromFoldersAndSortsDeterministically()
    {
        string root = Directory.CreateTempSubdirectory("imgfolder").FullName;
        try
        {
            string fixtureImages = FixtureFeatures.PairImages;
            Directory.CreateDirectory(Path.Combine(root, "Ankle_boot", "nested"));
            Directory.CreateDirectory(Path.Combine(root, "Bag"));
            Directory.CreateDirectory(Path.Combine(root, ".hidden"));
            File.Copy(Path.Combine(fixtureImages, "emoji_1f600.png"), Path.Combine(root, "Bag", "b.png"));
            File.Copy(Path.Combine(fixtureImages, "emoji_1f603.png"), Path.Combine(root, "Bag", "a.PNG"));
            File.Copy(Path.Combine(fixtureImages, "emoji_1f30d.png"), Path.Combine(root, "Ankle_boot", "nested", "z.png"));
            File.WriteAllText(Path.Combine(root, "Bag", "notes.txt"), "not an image");

            var ds = ImageFolderDataset.Load(root);
            Assert.Equal(["Ankle_boot", "Bag"], ds.ClassFolders);
            Assert.Equal(["Ankle boot", "Bag"], ds.ClassNames);
            Assert.Equal(3, ds.Count);
            Assert.Equal([0, 1, 1], ds.Items.Select(i => i.Label));
            Assert.Equal(["z.png", "a.PNG", "b.png"], ds.Items.Select(i => Path.GetFileName(i.Path)));
        }
        finally { Directory.Delete(root, true); }
    }

    [Fact]
    public void ExportIdx_RoundTripsLabelsNamesAndPixels_AndIsIdempotent()
    {
        string dir = Directory.CreateTempSubdirectory("idx-export").FullName;
        try
        {
            var set = IdxReader.ReadLabelled(IdxReaderTests.FashionImages, IdxReaderTests.FashionLabels, IdxReader.FashionMnistClassNames, maxCount: 120);
            string root = Path.Combine(dir, "fashion");
            Assert.True(ImageFolderExport.Export(set, root));

            var ds = ImageFolderDataset.Load(root);
            Assert.Equal(IdxReader.FashionMnistClassNames, ds.ClassNames); // "T-shirt/top" survives via classes.tsv
            Assert.Contains("T-shirt-top", ds.ClassFolders);
            Assert.Equal(120, ds.Count);
            for (int c = 0; c < 10; c++)
                Assert.Equal(set.Labels.Count(l => l == c), ds.Items.Count(i => i.Label == c));
            // Item file name = index in the idx file; its label and pixels must match that index.
            var first = ds.Items.Single(i => Path.GetFileName(i.Path) == "00000.png");
            Assert.Equal(9, first.Label);
            using (var decoded = SKBitmap.Decode(first.Path))
            {
                var raw = set.Images.Image(0);
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++)
                        Assert.Equal(raw[y * 28 + x], decoded.GetPixel(x, y).Red);
            }

            var stamp = File.GetLastWriteTimeUtc(first.Path);
            Assert.False(ImageFolderExport.Export(set, root)); // same items: no work
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(first.Path));
            Assert.True(ImageFolderExport.IsCompleteExport(set, root));

            var smaller = IdxReader.ReadLabelled(IdxReaderTests.FashionImages, IdxReaderTests.FashionLabels, IdxReader.FashionMnistClassNames, maxCount: 30);
            Assert.False(ImageFolderExport.IsCompleteExport(smaller, root));
            Assert.True(ImageFolderExport.Export(smaller, root)); // different items: rewritten, not appended
            Assert.Equal(30, ImageFolderDataset.Load(root).Count);
            Assert.DoesNotContain(Directory.GetDirectories(dir), d => d.Contains(".tmp-"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void MissingRootAndBadClassList_AreReported()
    {
        string dir = Directory.CreateTempSubdirectory("imgfolder-bad").FullName;
        try
        {
            Assert.Throws<DirectoryNotFoundException>(() => ImageFolderDataset.Load(Path.Combine(dir, "absent")));
            Directory.CreateDirectory(Path.Combine(dir, "a"));
            File.WriteAllText(Path.Combine(dir, ImageFolderDataset.ClassListFileName), "a\tfirst\nb\tsecond\n");
            var e = Assert.Throws<DirectoryNotFoundException>(() => ImageFolderDataset.Load(dir));
            Assert.Contains("line 2", e.Message);
            Assert.Contains("'b'", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void FolderNames_MapToAndFromClassNames()
    {
        Assert.Equal("Ankle_boot", ImageFolderDataset.FolderNameForClass("Ankle boot"));
        Assert.Equal("T-shirt-top", ImageFolderDataset.FolderNameForClass("T-shirt/top"));
        Assert.Equal("natural forces", ImageFolderDataset.ClassNameFromFolder("natural_forces"));
    }
}
